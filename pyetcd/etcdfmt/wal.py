"""etcd's write-ahead log (server/wal in etcd 3.5): segment files, record framing, writer, reader.

A segment is named ``%016x-%016x.wal`` % (sequence, index of the first entry it may hold) and is
preallocated to 64 MB (SegmentSizeBytes = 64 * 1000 * 1000). It is a run of frames::

    u64 little-endian length word | walpb.Record bytes | 0-7 zero bytes of padding

The low 56 bits of the length word are the record's size. Records are padded to 8-byte
alignment so that a length word is never torn; when there is padding, the top byte is
``0x80 | padding``. A length word of 0 (the preallocated zeros) ends a segment.

Each walpb.Record{type, crc, data} carries a CRC-32C (Castagnoli) chained across every record of
the log: crc = crc32c(data, previous crc). A segment starts with a crc record holding the chain
value so far (0 for the first), then the metadata record (etcdserverpb.Metadata); the first
segment then has an empty snapshot marker, later ones the last hard state. Record types: 1
metadata, 2 entry (raftpb.Entry), 3 state (raftpb.HardState), 4 crc, 5 snapshot (walpb.Snapshot).
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import struct
from dataclasses import dataclass, field

from crc32c import crc32c

from pyetcd.etcdfmt.pb import DecodeError, Entry, HardState, Record, WalSnapshot
from pyetcd.wal.fileutil import fsync_dir

METADATA_TYPE, ENTRY_TYPE, STATE_TYPE, CRC_TYPE, SNAPSHOT_TYPE = 1, 2, 3, 4, 5
SEGMENT_SIZE_BYTES = 64 * 1000 * 1000
MIN_SECTOR_SIZE = 512
_FRAME = struct.Struct("<Q")
_NAME_RE = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.wal$")


class WALError(Exception):
    """etcd's wal package errors, with etcd's texts."""


class ErrMetadataConflict(WALError):
    def __init__(self):
        super().__init__("wal: conflicting metadata found")


class ErrFileNotFound(WALError):
    def __init__(self):
        super().__init__("wal: file not found")


class ErrCRCMismatch(WALError):
    def __init__(self):
        super().__init__("wal: crc mismatch")


class ErrSnapshotMismatch(WALError):
    def __init__(self):
        super().__init__("wal: snapshot mismatch")


class ErrSnapshotNotFound(WALError):
    def __init__(self):
        super().__init__("wal: snapshot not found")


class ErrSliceOutOfRange(WALError):
    def __init__(self):
        super().__init__("wal: slice bounds out of range")


class ErrUnexpectedEOF(WALError):
    """A record cut short (io.ErrUnexpectedEOF): a torn write at the tail."""

    def __init__(self):
        super().__init__("unexpected EOF")


# --- names and frames ----------------------------------------------------------------------------
def wal_name(seq: int, index: int) -> str:
    return "%016x-%016x.wal" % (seq, index)


def parse_wal_name(name: str) -> tuple[int, int]:
    m = _NAME_RE.match(name)
    if not m:
        raise WALError(f"wal: bad wal name {name!r}")
    return int(m.group(1), 16), int(m.group(2), 16)


def wal_names(dirpath: str) -> list[str]:
    """The valid segment names in dirpath, sorted (so in sequence order)."""
    out = []
    for n in sorted(os.listdir(dirpath)):
        if n.endswith(".wal") and _NAME_RE.match(n):
            out.append(n)
    return out


def exists(dirpath: str) -> bool:
    """wal.Exist: the directory holds at least one ``.wal`` file."""
    try:
        return any(n.endswith(".wal") for n in os.listdir(dirpath))
    except OSError:
        return False


def encode_frame_size(n: int) -> tuple[int, int]:
    pad = (8 - n % 8) % 8
    word = n | ((0x80 | pad) << 56) if pad else n
    return word, pad


def decode_frame_size(word: int) -> tuple[int, int]:
    rec = word & ((1 << 56) - 1)
    pad = (word >> 56) & 0x7 if word & (1 << 63) else 0
    return rec, pad


def frame(rec: Record) -> bytes:
    data = rec.marshal()
    word, pad = encode_frame_size(len(data))
    return _FRAME.pack(word) + data + b"\0" * pad


# --- writer --------------------------------------------------------------------------------------
def _open_segment(path: str, size: int):
    """A new, locked, preallocated segment file (fileutil.LockFile + Preallocate(extend))."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    f = os.fdopen(fd, "r+b", buffering=0)
    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    if size > 0:
        try:
            os.posix_fallocate(f.fileno(), 0, size)
        except OSError:  # a filesystem without fallocate: extend, as fileutil falls back to
            if os.fstat(f.fileno()).st_size < size:
                f.truncate(size)
    return f


class WAL:
    """The append side of etcd's WAL: create, save, save_snapshot, close. Segments are cut when
    a save leaves the tail at or beyond ``segment_size`` bytes, as etcd does."""

    def __init__(self, dirpath: str, metadata: bytes, segment_size: int):
        self.dir = dirpath
        self.metadata = metadata
        self.segment_size = segment_size
        self.state = HardState()
        self.enti = 0           # index of the last entry saved
        self.crc = 0            # chain value after the last record written
        self.files: list = []   # locked segment files; the last is the tail
        self.seqs: list[int] = []
        self._buf = bytearray()

    @classmethod
    def create(cls, dirpath: str, metadata: bytes, segment_size: int = SEGMENT_SIZE_BYTES) -> "WAL":
        """wal.Create: build the first segment in ``<dir>.tmp``, then rename it into place, so
        that a WAL directory either does not exist or holds a complete first segment."""
        if exists(dirpath):
            raise FileExistsError(17, "file already exists")
        tmp = os.path.normpath(dirpath) + ".tmp"
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        os.makedirs(tmp, mode=0o700, exist_ok=True)  # the parent exists: CreateDirAll(dir) came first
        w = cls(dirpath, metadata, segment_size)
        try:
            f = _open_segment(os.path.join(tmp, wal_name(0, 0)), segment_size)
            w.files.append(f)
            w.seqs.append(0)
            w._save_crc(0)
            w._encode(Record(type=METADATA_TYPE, data=metadata))
            w.save_snapshot(WalSnapshot())
            # renameWAL: replace the (empty) target directory with the temporary one
            if os.path.exists(dirpath):
                shutil.rmtree(dirpath)
            os.rename(tmp, dirpath)
            fsync_dir(os.path.dirname(os.path.abspath(dirpath)))
        except BaseException:
            w.close()
            raise
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
        return w

    # records
    def _encode(self, rec: Record) -> None:
        self.crc = crc32c(rec.data or b"", self.crc)
        rec.crc = self.crc
        self._buf += frame(rec)

    def _save_crc(self, prev: int) -> None:
        self._buf += frame(Record(type=CRC_TYPE, crc=prev))

    def _save_state(self, st: HardState) -> None:
        if st.is_empty():
            return
        self.state = HardState(st.term, st.vote, st.commit)
        self._encode(Record(type=STATE_TYPE, data=st.marshal()))

    def _flush(self) -> None:
        if self._buf:
            self.files[-1].write(bytes(self._buf))
            self._buf.clear()

    def _sync(self) -> None:
        self._flush()
        os.fdatasync(self.files[-1].fileno())

    def _tail_offset(self) -> int:
        return self.files[-1].tell() + len(self._buf)

    # the WAL interface
    def save(self, st: HardState, entries: list[Entry]) -> None:
        if st.is_empty() and not entries:
            return
        must_sync = bool(entries) or st.vote != self.state.vote or st.term != self.state.term
        for e in entries:
            self._encode(Record(type=ENTRY_TYPE, data=e.marshal()))
            self.enti = e.index
        self._save_state(st)
        if self._tail_offset() < self.segment_size:
            if must_sync:
                self._sync()
            else:
                self._flush()
            return
        self.cut()

    def save_snapshot(self, snap: WalSnapshot) -> None:
        self._encode(Record(type=SNAPSHOT_TYPE, data=snap.marshal()))
        if self.enti < snap.index:
            self.enti = snap.index
        self._sync()

    def cut(self) -> None:
        """Close the tail at its current size and start segment seq+1 named after the next
        entry index: crc record (the chain so far), metadata, last hard state."""
        self._flush()
        tail = self.files[-1]
        tail.truncate(tail.tell())
        os.fdatasync(tail.fileno())
        seq = self.seqs[-1] + 1
        path = os.path.join(self.dir, wal_name(seq, self.enti + 1))
        tmp = os.path.join(self.dir, f"{seq}.tmp")
        f = _open_segment(tmp, self.segment_size)
        self.files.append(f)
        self.seqs.append(seq)
        self._save_crc(self.crc)
        self._encode(Record(type=METADATA_TYPE, data=self.metadata))
        self._save_state(self.state)
        self._sync()
        os.rename(tmp, path)
        fsync_dir(self.dir)

    def close(self) -> None:
        if self.files:
            try:
                self._sync()
            except (OSError, ValueError):
                pass
        for f in self.files:
            try:
                f.close()  # closing releases the flock
            except OSError:
                pass
        self.files = []


# --- reader --------------------------------------------------------------------------------------
@dataclass
class DecodedRecord:
    """A record as read, with where it was: segment name and offset of its length word."""
    segment: str
    offset: int
    record: Record
    frame_size: int  # length word + record + padding


def _torn(data: bytes, frame_off: int) -> bool:
    """decoder.isTornEntry: a sector-aligned chunk of the record that is all zeros means the
    write never reached the disk (only checked in the last segment)."""
    off = frame_off + 8
    cur = 0
    while cur < len(data):
        n = min(MIN_SECTOR_SIZE - off % MIN_SECTOR_SIZE, len(data) - cur)
        if not any(data[cur:cur + n]):
            return True
        off += n
        cur += n
    return False


def decode_records(paths: list[str]):
    """Yield DecodedRecord for every record of the given segments, in order, checking the CRC
    chain as etcd's decoder does (a crc record resets the chain to its value, after ReadAll's
    check). Ends at the first zero length word (or end of file) of the last segment. Raises
    ErrUnexpectedEOF for a torn tail and ErrCRCMismatch for corruption."""
    crc = 0
    for si, path in enumerate(paths):
        last = si == len(paths) - 1
        name = os.path.basename(path)
        with open(path, "rb") as f:
            off = 0
            while True:
                head = f.read(8)
                if len(head) < 8:
                    if head:
                        raise ErrUnexpectedEOF()
                    break
                word = _FRAME.unpack(head)[0]
                if word == 0:
                    break
                n, pad = decode_frame_size(word)
                data = f.read(n + pad)
                if len(data) < n + pad:
                    raise ErrUnexpectedEOF()
                try:
                    rec = Record.unmarshal(data[:n])
                except DecodeError:
                    if last and _torn(data, off):
                        raise ErrUnexpectedEOF() from None
                    raise
                if rec.type == CRC_TYPE:
                    if crc != 0 and rec.crc != crc:
                        raise ErrCRCMismatch()
                    crc = rec.crc
                else:
                    crc = crc32c(rec.data or b"", crc)
                    if rec.crc != crc:
                        if last and _torn(data, off):
                            raise ErrUnexpectedEOF()
                        raise ErrCRCMismatch()
                yield DecodedRecord(name, off, rec, 8 + n + pad)
                off += 8 + n + pad


def select_wal_files(dirpath: str, snap_index: int) -> list[str]:
    """selectWALFiles: the segments from the last one whose first index is <= snap_index on,
    which must have consecutive sequence numbers."""
    names = wal_names(dirpath)
    start = None
    for i in range(len(names) - 1, -1, -1):
        if parse_wal_name(names[i])[1] <= snap_index:
            start = i
            break
    if start is None:
        raise ErrFileNotFound()
    seqs = [parse_wal_name(n)[0] for n in names[start:]]
    if any(b != a + 1 for a, b in zip(seqs, seqs[1:])):
        raise ErrFileNotFound()
    return [os.path.join(dirpath, n) for n in names[start:]]


@dataclass
class WALContents:
    metadata: bytes | None = None
    state: HardState = field(default_factory=HardState)
    entries: list[Entry] = field(default_factory=list)
    snapshots: list[WalSnapshot] = field(default_factory=list)  # markers, in log order
    torn_tail: bool = False  # reading stopped at a record cut short


def read_all(dirpath: str, snap: WalSnapshot | None = None) -> WALContents:
    """WAL.ReadAll in read-only mode, from the snapshot marker ``snap`` (index, term; default
    the empty marker every WAL starts with): the metadata, the last hard state, the entries
    after snap.index (a later entry with the same index replaces the earlier one and drops
    everything after it, as Raft overwrites a conflicting tail) and every snapshot marker.
    A torn last record is tolerated (``torn_tail``). Raises ErrSnapshotNotFound when no marker
    matches snap, ErrSnapshotMismatch when one has snap's index but another term."""
    start = snap or WalSnapshot()
    out = WALContents()
    match = False
    try:
        for d in decode_records(select_wal_files(dirpath, start.index)):
            rec = d.record
            if rec.type == ENTRY_TYPE:
                e = Entry.unmarshal(rec.data or b"")
                if e.index > start.index:
                    up = e.index - start.index - 1
                    if up > len(out.entries):
                        raise ErrSliceOutOfRange()
                    del out.entries[up:]
                    out.entries.append(e)
            elif rec.type == STATE_TYPE:
                out.state = HardState.unmarshal(rec.data or b"")
            elif rec.type == METADATA_TYPE:
                if out.metadata is not None and out.metadata != (rec.data or b""):
                    raise ErrMetadataConflict()
                out.metadata = rec.data or b""
            elif rec.type == SNAPSHOT_TYPE:
                s = WalSnapshot.unmarshal(rec.data or b"")
                out.snapshots.append(s)
                if s.index == start.index:
                    if s.term != start.term:
                        raise ErrSnapshotMismatch()
                    match = True
            elif rec.type != CRC_TYPE:
                raise WALError(f"unexpected block type {rec.type}")
    except ErrUnexpectedEOF:
        out.torn_tail = True
    if not match:
        raise ErrSnapshotNotFound()
    return out


def valid_snapshot_entries(dirpath: str) -> list[WalSnapshot]:
    """wal.ValidSnapshotEntries: the snapshot markers whose index is at most the last hard
    state's commit (a snapshot beyond the commit index cannot be trusted)."""
    snaps: list[WalSnapshot] = []
    state = HardState()
    try:
        for d in decode_records(select_wal_files(dirpath, 0)):
            if d.record.type == SNAPSHOT_TYPE:
                snaps.append(WalSnapshot.unmarshal(d.record.data or b""))
            elif d.record.type == STATE_TYPE:
                state = HardState.unmarshal(d.record.data or b"")
    except ErrUnexpectedEOF:
        pass
    return [s for s in snaps if s.index <= state.commit]
