"""Raft snapshot files, like etcd's snap package.

A snapshot file is named ``%016x-%016x.snap`` % (term, index), so name order is (term, index)
order, and holds::

    8 bytes  magic  b"pyesnap1"
    u32      crc    CRC-32C of the payload
    u64      length payload length
    payload  raftpb.Snapshot

(little-endian). Files are written atomically: temp file, fsync, rename, fsync directory. A file
that fails any check (short, bad magic, bad crc, undecodable, or a name that does not match its
metadata) is renamed to ``<name>.broken`` when loading and the next older one is tried.
"""
import os
import re
import struct

from crc32c import crc32c

from pyetcd.pb import raftpb

from .errors import WALError
from .fileutil import fsync_dir, write_file_atomic

MAGIC = b"pyesnap1"
_HEAD = struct.Struct("<8sIQ")
_NAME_RE = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.snap$")


def snap_name(term: int, index: int) -> str:
    return "%016x-%016x.snap" % (term, index)


def encode(snapshot) -> bytes:
    payload = snapshot.SerializeToString()
    return _HEAD.pack(MAGIC, crc32c(payload), len(payload)) + payload


def decode(data: bytes, name: str = "snapshot"):
    """Verify and parse one snapshot file's bytes; raise WALError saying what is wrong."""
    if len(data) < _HEAD.size:
        raise WALError("%s: short file (%d bytes)" % (name, len(data)))
    magic, crc, length = _HEAD.unpack_from(data, 0)
    if magic != MAGIC:
        raise WALError("%s: not a snapshot file" % name)
    payload = memoryview(data)[_HEAD.size:]
    if len(payload) != length:
        raise WALError("%s: payload is %d bytes, header says %d" % (name, len(payload), length))
    if crc32c(payload) != crc:
        raise WALError("%s: CRC mismatch" % name)
    try:
        return raftpb.Snapshot.FromString(payload)
    except Exception as exc:  # protobuf DecodeError
        raise WALError("%s: cannot decode: %s" % (name, exc)) from None


class Snapshotter:
    """Saves and loads raft snapshots in one directory."""

    def __init__(self, dirpath: str):
        self.dirpath = dirpath
        os.makedirs(dirpath, exist_ok=True)
        for name in os.listdir(dirpath):
            # A save that crashed before its rename: never a valid snapshot.
            if name.endswith(".snap.tmp") and _NAME_RE.match(name[:-4]):
                os.unlink(os.path.join(dirpath, name))

    def save(self, snapshot) -> str:
        """Write ``snapshot`` durably; return the file name. An empty snapshot is not written."""
        md = snapshot.metadata
        if md.index == 0:
            raise WALError("refusing to save an empty snapshot (index 0)")
        name = snap_name(md.term, md.index)
        write_file_atomic(os.path.join(self.dirpath, name), encode(snapshot))
        return name

    def names(self) -> list:
        """Snapshot file names, newest (highest term, then index) first."""
        out = []
        for name in os.listdir(self.dirpath):
            if _NAME_RE.match(name):
                out.append(name)
        out.sort(reverse=True)
        return out

    def _read(self, name: str):
        path = os.path.join(self.dirpath, name)
        with open(path, "rb") as f:
            data = f.read()
        snap = decode(data, path)
        m = _NAME_RE.match(name)
        term, index = int(m.group(1), 16), int(m.group(2), 16)
        if (snap.metadata.term, snap.metadata.index) != (term, index):
            raise WALError("%s: holds snapshot (term %d, index %d)"
                           % (path, snap.metadata.term, snap.metadata.index))
        return snap

    def _load_first(self, names):
        broken = False
        try:
            for name in names:
                try:
                    return self._read(name)
                except (WALError, OSError):
                    path = os.path.join(self.dirpath, name)
                    try:
                        os.rename(path, path + ".broken")
                        broken = True
                    except OSError:
                        pass
            return None
        finally:
            if broken:
                fsync_dir(self.dirpath)

    def load(self):
        """The newest valid snapshot, or None if there is none."""
        return self._load_first(self.names())

    def load_newest_available(self, candidates):
        """The newest valid snapshot whose (index, term) is among ``candidates``, or None.

        ``candidates`` are the snapshot markers the WAL holds (ReadState.snapshots), so the
        snapshot chosen is one the WAL can be replayed from.
        """
        wanted = {snap_name(term, index) for index, term in candidates}
        return self._load_first([n for n in self.names() if n in wanted])

    def remove_older_than(self, index: int, keep: int = 1) -> list:
        """Delete snapshot files with an index below ``index``, keeping the newest ``keep``."""
        removed = []
        for name in self.names()[keep:]:
            if int(_NAME_RE.match(name).group(2), 16) < index:
                os.unlink(os.path.join(self.dirpath, name))
                removed.append(name)
        if removed:
            fsync_dir(self.dirpath)
        return removed
