"""Read an etcd 3.5 data directory the way etcd's bootstrap does (etcdserver.NewServer with an
existing WAL): the WAL's valid snapshot markers, the newest ``.snap`` file that matches one of
them, then the WAL from that snapshot on.

    d = read_data_dir("default.etcd")
    d.member_id, d.cluster_id      # from the WAL metadata
    d.snapshot                     # raftpb.Snapshot or None; its data is the v2 store JSON
    d.hard_state, d.entries        # the entries after the snapshot
    d.db_path                      # the bbolt backend (meta/consistent_index says how far it got)
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from pyetcd.etcdfmt import pb, snap, wal
from pyetcd.etcdfmt.v2store import membership_from_json


@dataclass
class EtcdDataDir:
    data_dir: str
    wal_dir: str
    snap_dir: str
    db_path: str
    member_id: int
    cluster_id: int
    snapshot: pb.Snapshot | None
    hard_state: pb.HardState
    entries: list[pb.Entry]
    torn_tail: bool = False
    membership: dict = field(default_factory=dict)  # from the snapshot's v2 store, if any


def read_data_dir(data_dir: str, wal_dir: str = "") -> EtcdDataDir:
    """Raises wal.WALError / snap.SnapError as etcd would fail to start; FileNotFoundError when
    there is no WAL (etcd would bootstrap a new member instead)."""
    member_dir = os.path.join(data_dir, "member")
    wal_dir = wal_dir or os.path.join(member_dir, "wal")
    snap_dir = os.path.join(member_dir, "snap")
    if not wal.exists(wal_dir):
        raise FileNotFoundError(2, "no WAL", wal_dir)
    marks = wal.valid_snapshot_entries(wal_dir)
    try:
        snapshot = snap.load_newest_available(snap_dir, marks)
    except snap.ErrNoSnapshot:
        snapshot = None
    start = pb.WalSnapshot()
    if snapshot is not None:
        md = snapshot.metadata
        start = pb.WalSnapshot(md.index, md.term, md.conf_state)
    contents = wal.read_all(wal_dir, start)
    meta = pb.Metadata.unmarshal(contents.metadata or b"")
    membership = membership_from_json(snapshot.data) if snapshot is not None and snapshot.data else {}
    return EtcdDataDir(data_dir, wal_dir, snap_dir, os.path.join(snap_dir, "db"), meta.node_id,
                       meta.cluster_id, snapshot, contents.state, contents.entries,
                       contents.torn_tail, membership)
