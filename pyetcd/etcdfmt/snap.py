"""etcd's raft snapshot files (server/etcdserver/api/snap in etcd 3.5).

``<snap dir>/%016x-%016x.snap`` % (term, index) holds a snappb.Snapshot{crc, data}: data is the
marshalled raftpb.Snapshot (in 3.5 its data is the v2 store's JSON; the v3 data lives in the
bbolt file ``db`` next to it), crc is the CRC-32C (Castagnoli) of data. Files are written with
mode 0666 (less the umask) and fsynced. A file that fails to load is renamed ``<name>.broken``.
"""
from __future__ import annotations

import os

from crc32c import crc32c

from pyetcd.etcdfmt.pb import DecodeError, SnapFile, Snapshot, WalSnapshot

SNAP_SUFFIX = ".snap"


class SnapError(Exception):
    pass


class ErrNoSnapshot(SnapError):
    def __init__(self):
        super().__init__("snap: no available snapshot")


class ErrEmptySnapshot(SnapError):
    def __init__(self):
        super().__init__("snap: empty snapshot")


class ErrCRCMismatch(SnapError):
    def __init__(self):
        super().__init__("snap: crc mismatch")


def snap_name(term: int, index: int) -> str:
    return "%016x-%016x%s" % (term, index, SNAP_SUFFIX)


def encode(snapshot: Snapshot) -> bytes:
    """The bytes of a .snap file for snapshot."""
    body = snapshot.marshal()
    return SnapFile(crc=crc32c(body), data=body).marshal()


def decode(data: bytes) -> Snapshot:
    """snap.Read's checks: non-empty, crc present and matching, then the raftpb.Snapshot."""
    if not data:
        raise ErrEmptySnapshot()
    try:
        f = SnapFile.unmarshal(data)
    except DecodeError as e:
        raise SnapError(f"snap: {e}") from None
    if not f.data or f.crc == 0:
        raise ErrEmptySnapshot()
    if crc32c(f.data) != f.crc:
        raise ErrCRCMismatch()
    try:
        return Snapshot.unmarshal(f.data)
    except DecodeError as e:
        raise SnapError(f"snap: {e}") from None


def save_snap(snap_dir: str, snapshot: Snapshot) -> str:
    """Snapshotter.SaveSnap: write and fsync the file named after the snapshot's term and index.
    An empty snapshot (index 0: raft.IsEmptySnap) is not saved, as in etcd. Returns the path
    (or "")."""
    md = snapshot.metadata
    if md.index == 0:
        return ""
    path = os.path.join(snap_dir, snap_name(md.term, md.index))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        os.write(fd, encode(snapshot))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def read_snap(path: str) -> Snapshot:
    with open(path, "rb") as f:
        return decode(f.read())


def snap_names(snap_dir: str) -> list[str]:
    """The ``.snap`` files in snap_dir, newest (highest term, then index) first."""
    try:
        names = os.listdir(snap_dir)
    except FileNotFoundError:
        return []
    return sorted((n for n in names if n.endswith(SNAP_SUFFIX)), reverse=True)


def _load_matching(snap_dir: str, match) -> Snapshot:
    for name in snap_names(snap_dir):
        path = os.path.join(snap_dir, name)
        try:
            s = read_snap(path)
        except (SnapError, OSError):
            try:  # etcd renames a file it cannot load, so it is skipped from now on
                os.rename(path, path + ".broken")
            except OSError:
                pass
            continue
        if match(s):
            return s
    raise ErrNoSnapshot()


def load_newest(snap_dir: str) -> Snapshot:
    """Snapshotter.Load: the newest snapshot file that loads."""
    return _load_matching(snap_dir, lambda s: True)


def load_newest_available(snap_dir: str, wal_snaps: list[WalSnapshot]) -> Snapshot:
    """Snapshotter.LoadNewestAvailable: the newest snapshot file whose (term, index) is one of
    the WAL's valid snapshot markers (wal.valid_snapshot_entries)."""
    marks = {(w.term, w.index) for w in wal_snaps}
    return _load_matching(snap_dir, lambda s: (s.metadata.term, s.metadata.index) in marks)
