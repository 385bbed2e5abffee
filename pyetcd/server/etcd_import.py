"""Start pyetcd from a data dir that etcd 3.5 wrote: `etcdutl snapshot restore` (or `pyetcdctl
snapshot restore`) output, or the data dir of a cleanly stopped etcd member.

An etcd member dir holds a bbolt backend (``member/snap/db``), etcd's WAL (``member/wal``) and
``.snap`` files. pyetcd converts it once, on start, into its own layout:

1. read etcd's WAL from its newest valid snapshot (pyetcd.etcdfmt), and the backend's consistent
   index and term (``meta`` bucket);
2. refuse, changing nothing, if the WAL holds anything after the consistent index except empty
   entries: committed-but-unapplied requests would be lost, since pyetcd cannot replay etcd's log
   entries (start the etcd member once more and stop it cleanly, or `snapshot save` + restore);
3. write a pyetcd member dir beside it (``member.pyetcd-import``): the buckets copied into SQLite
   (pyetcd.storage.etcd_buckets), a raft snapshot at the consistent index holding the member
   list, and a WAL with the same member and cluster IDs and the hard state;
4. swap the directories: ``member`` -> ``member.etcd`` (kept, untouched, for going back to etcd),
   then ``member.pyetcd-import`` -> ``member``. A crash between the two renames is completed on
   the next start.
"""
from __future__ import annotations

import json
import os
import shutil
import struct

from pyetcd.wal.fileutil import fsync_dir

BOLT_MAGIC = 0xED0CDAED
IMPORT_SUFFIX = ".pyetcd-import"
BACKUP_SUFFIX = ".etcd"


class ImportError_(Exception):
    """The etcd data dir cannot be imported (the message says why); nothing was changed."""


def is_etcd_member_dir(member_dir: str) -> bool:
    """True when member/snap/db is a bbolt file (etcd's backend), not pyetcd's SQLite."""
    try:
        with open(os.path.join(member_dir, "snap", "db"), "rb") as f:
            head = f.read(20)
    except OSError:
        return False
    return len(head) == 20 and struct.unpack_from("<I", head, 16)[0] == BOLT_MAGIC


def finish_interrupted_import(member_dir: str) -> bool:
    """Complete the directory swap of an import that crashed between its two renames."""
    tmp, backup = member_dir + IMPORT_SUFFIX, member_dir + BACKUP_SUFFIX
    if not os.path.exists(member_dir) and os.path.isdir(tmp) and os.path.isdir(backup):
        os.rename(tmp, member_dir)
        fsync_dir(os.path.dirname(os.path.abspath(member_dir)))
        return True
    return False


def _u64(v: bytes | None) -> int:
    return struct.unpack(">Q", v)[0] if v and len(v) == 8 else 0


def read_etcd_member_dir(member_dir: str):
    """(member id, cluster id, hard state, consistent index, term) of an etcd member dir, after
    checking that nothing in its WAL lies beyond what the backend has applied."""
    from pyetcd.bolt import BoltError, open_file
    from pyetcd.etcdfmt import snap as esnap
    from pyetcd.etcdfmt import wal as ewal
    from pyetcd.etcdfmt.datadir import read_data_dir
    from pyetcd.etcdfmt.pb import ENTRY_NORMAL

    data_dir = os.path.dirname(os.path.abspath(member_dir))
    try:
        d = read_data_dir(data_dir)
    except FileNotFoundError as e:
        raise ImportError_(f"etcd backend found but no etcd WAL in {e.filename}") from e
    except (ewal.WALError, esnap.SnapError, OSError, ValueError) as e:
        raise ImportError_(f"cannot read etcd's WAL in {member_dir}/wal: {e}") from e
    try:
        with open_file(d.db_path) as db:
            ci = _u64(db.get(b"meta", b"consistent_index"))
            term = _u64(db.get(b"meta", b"term"))
    except (BoltError, KeyError, OSError) as e:
        raise ImportError_(f"cannot read etcd's backend {d.db_path}: {e}") from e
    if ci == 0:
        raise ImportError_("etcd's backend has no consistent index (was it written by etcd 3.5?)")
    pending = [e for e in d.entries if e.index > ci and (e.data or e.type != ENTRY_NORMAL)]
    if pending:
        raise ImportError_(
            f"etcd's WAL holds {len(pending)} entries after the backend's consistent index {ci} "
            f"(up to {pending[-1].index}); pyetcd cannot replay etcd's log. Start the etcd member "
            "once more and stop it cleanly, or move the data with `snapshot save` and `snapshot restore`")
    if term == 0:
        term = next((e.term for e in d.entries if e.index == ci), d.hard_state.term)
    return d.member_id, d.cluster_id, d.hard_state, ci, term


def import_etcd_member_dir(member_dir: str, lg=None) -> str:
    """Convert an etcd member dir in place (see the module doc); returns the backup's path."""
    from pyetcd.pb import raftpb
    from pyetcd.storage.backend import Backend
    from pyetcd.storage.etcd_buckets import bolt_to_backend
    from pyetcd.wal import WAL
    from pyetcd.wal.snap import Snapshotter

    from .membership import Membership

    member_id, cluster_id, hs, ci, term = read_etcd_member_dir(member_dir)
    tmp, backup = member_dir + IMPORT_SUFFIX, member_dir + BACKUP_SUFFIX
    if os.path.exists(backup):
        raise ImportError_(f"{backup} exists (an earlier import's copy of etcd's files); move it away first")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "snap"))
    bolt_to_backend(os.path.join(member_dir, "snap", "db"), os.path.join(tmp, "snap", "db"))
    be = Backend(os.path.join(tmp, "snap", "db"))
    try:
        membership = Membership(be)
        if member_id not in membership.members:
            raise ImportError_(f"member {member_id:x} (etcd's WAL metadata) is not in the backend's member list")
        if be.consistent_index != ci:
            raise ImportError_(f"consistent index changed while copying ({ci} -> {be.consistent_index})")
        cs = raftpb.ConfState(voters=sorted(m.id for m in membership.members.values() if not m.is_learner),
                              learners=sorted(m.id for m in membership.members.values() if m.is_learner))
        snap = raftpb.Snapshot(data=membership.snapshot_data())
        snap.metadata.index, snap.metadata.term = ci, term
        snap.metadata.conf_state.CopyFrom(cs)
        members = len(membership.members)
    finally:
        be.close()
    Snapshotter(os.path.join(tmp, "snap")).save(snap)
    wal = WAL.create(os.path.join(tmp, "wal"),
                     json.dumps({"member_id": member_id, "cluster_id": cluster_id}).encode())
    try:
        wal.save_snapshot(ci, term)
        t = max(hs.term, term)
        wal.save(raftpb.HardState(term=t, vote=hs.vote if hs.term == t else 0, commit=ci), [])
    finally:
        wal.close()
    os.rename(member_dir, backup)
    os.rename(tmp, member_dir)
    fsync_dir(os.path.dirname(os.path.abspath(member_dir)))
    if lg is not None:
        lg.info("imported an etcd data dir", **{
            "member-dir": member_dir, "etcd-files-kept-in": backup, "local-member-id": f"{member_id:x}",
            "cluster-id": f"{cluster_id:x}", "consistent-index": ci, "term": term, "members": members})
    return backup
