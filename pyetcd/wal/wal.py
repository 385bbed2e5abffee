"""The write-ahead log: a directory of segment files holding framed, CRC-chained records.

See the package docstring for the on-disk format. One WAL object is the only writer of its
directory (enforced with flock on the directory). Its methods are serialised by a lock, so it
may be driven from an executor thread.
"""
import contextlib
import fcntl
import os
import re
import threading
import time

from crc32c import crc32c

from pyetcd.pb import raftpb

from . import record as rec
from .errors import WALCorruptError, WALError
from .fileutil import fdatasync, fsync_dir, preallocate, pwrite_all, read_data

SEGMENT_SIZE = 64 * 1024 * 1024
_SEGMENT_RE = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.wal$")


def segment_name(seq: int, index: int) -> str:
    return "%016x-%016x.wal" % (seq, index)


def list_segments(dirpath: str) -> list:
    """[(seq, first_index, name)] of the segment files in ``dirpath``, ordered by seq."""
    try:
        names = os.listdir(dirpath)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        m = _SEGMENT_RE.match(name)
        if m:
            out.append((int(m.group(1), 16), int(m.group(2), 16), name))
    out.sort()
    return out


def _empty_state(hs) -> bool:
    return hs.term == 0 and hs.vote == 0 and hs.commit == 0


class ReadState:
    """What WAL.open replayed.

    metadata: the bytes given to WAL.create. hard_state: the last saved raftpb.HardState (empty if
    none). entries: the raft log after snapshot_index, conflicts already resolved. snapshots:
    every (index, term) snapshot marker read. repaired: a torn tail was cut off.
    """

    __slots__ = ("metadata", "hard_state", "entries", "snapshots", "repaired")

    def __init__(self):
        self.metadata = b""
        self.hard_state = raftpb.HardState()
        self.entries = []
        self.snapshots = []
        self.repaired = False

    def __repr__(self):
        return "ReadState(entries=%d, hard_state=(%d,%d,%d), snapshots=%d, repaired=%s)" % (
            len(self.entries), self.hard_state.term, self.hard_state.vote,
            self.hard_state.commit, len(self.snapshots), self.repaired)


def _lock_dir(dirpath: str) -> int:
    fd = os.open(dirpath, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WALError("%s: WAL is locked by another writer" % dirpath) from None
    return fd


class WAL:
    """An open write-ahead log, positioned for append at the end of its last segment."""

    # Called with the seconds each fdatasync took (etcd's wal_fsync_duration_seconds); set it
    # on the instance to feed a histogram. Runs in the saving thread, under the WAL's lock.
    fsync_observer = None

    def __init__(self, dirpath, dir_fd, metadata, segments, fd, offset, crc, last_index,
                 state, segment_size, prealloc):
        self.dirpath = dirpath
        self._dir_fd = dir_fd          # holds the flock for as long as we are open
        self._metadata = metadata
        self._segments = segments      # [(seq, first_index, name)]; the last is the tail we append to
        self._fd = fd                  # tail segment, opened for writing
        self._offset = offset          # end of the last whole record in the tail
        self._crc = crc                # crc of the last record written: the next record's link
        self._last_index = last_index  # index of the last entry saved (or snapshot marker, if later)
        self._state = state            # last hard state saved; repeated at the head of each segment
        self._segment_size = segment_size
        self._prealloc = prealloc
        self._unsynced = False
        self._unsynced_bytes = 0       # bytes written since the last fdatasync (<= rec.TEAR_WINDOW)
        self._failed = None            # the OSError that made this WAL unusable, if any
        self.bytes_written = 0         # record bytes appended by save() since open (for metrics)
        self._mu = threading.Lock()

    # ------------------------------------------------------------------ creation / opening

    @staticmethod
    def exists(dirpath: str) -> bool:
        return bool(list_segments(dirpath))

    @classmethod
    def create(cls, dirpath: str, metadata: bytes, *, segment_size: int = SEGMENT_SIZE,
               preallocate_segments: bool = True) -> "WAL":
        """Start a new log in ``dirpath`` (created if needed; must hold no segments yet)."""
        if cls.exists(dirpath):
            raise WALError("%s: a WAL already exists here" % dirpath)
        parent = os.path.dirname(os.path.abspath(dirpath))
        made = not os.path.isdir(dirpath)
        os.makedirs(dirpath, exist_ok=True)
        if made:
            fsync_dir(parent)
        dir_fd = _lock_dir(dirpath)
        try:
            metadata = bytes(metadata)
            buf = bytearray()
            crc = rec.append_record(buf, rec.METADATA, metadata, 0)
            # An empty snapshot marker, as etcd writes, so "snapshot 0" is always present.
            crc = rec.append_record(buf, rec.SNAPSHOT, rec.encode_snapshot(0, 0), crc)
            name = segment_name(0, 0)
            fd = cls._write_new_segment(dirpath, name, buf, segment_size if preallocate_segments else 0)
        except BaseException:
            os.close(dir_fd)
            raise
        return cls(dirpath, dir_fd, metadata, [(0, 0, name)], fd, len(buf), crc, 0,
                   raftpb.HardState(), segment_size, preallocate_segments)

    @staticmethod
    def _write_new_segment(dirpath: str, name: str, head: bytes, prealloc: int) -> int:
        """Create a segment durably holding ``head``: write a temp file, sync, rename, sync dir.

        A crash at any point leaves either no segment or a whole one, never a half-made head.
        """
        path = os.path.join(dirpath, name)
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            preallocate(fd, prealloc)
            pwrite_all(fd, head, 0)
            os.fsync(fd)
            os.rename(tmp, path)
            fsync_dir(dirpath)
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def snapshot_markers(dirpath: str) -> list:
        """The (index, term) snapshot markers a restart could open the WAL from (read-only).

        Like etcd's ValidSnapshotEntries: every segment is verified (a torn tail is tolerated,
        not repaired) and only markers at or below the last saved commit index count. Use it to
        pick the snapshot file: ``Snapshotter.load_newest_available(WAL.snapshot_markers(d))``
        -- a snapshot file written just before a crash may have no marker in the WAL yet.
        """
        segments = list_segments(dirpath)
        if not segments:
            raise WALError("%s: no WAL segments" % dirpath)
        markers = []
        commit = 0
        prev = None
        for i, (_seq, _first, name) in enumerate(segments):
            path = os.path.join(dirpath, name)
            scan = rec.scan_segment(read_data(path), path, prev, tail=i == len(segments) - 1)
            if scan.records:
                prev = scan.last_crc
            for rtype, payload in scan.records:
                if rtype == rec.SNAPSHOT:
                    markers.append(rec.decode_snapshot(payload))
                elif rtype == rec.STATE:
                    commit = raftpb.HardState.FromString(payload).commit
        return [(index, term) for index, term in markers if index <= commit]

    @classmethod
    def open(cls, dirpath: str, *, snapshot_index: int = 0, snapshot_term: int = 0,
             segment_size: int = SEGMENT_SIZE, preallocate_segments: bool = True):
        """Replay the log from the segment holding ``snapshot_index``; return (wal, ReadState)."""
        segments = list_segments(dirpath)
        if not segments:
            raise WALError("%s: no WAL segments" % dirpath)
        dir_fd = _lock_dir(dirpath)
        try:
            return cls._open_locked(dirpath, dir_fd, segments, snapshot_index, snapshot_term,
                                    segment_size, preallocate_segments)
        except BaseException:
            os.close(dir_fd)
            raise

    @classmethod
    def _open_locked(cls, dirpath, dir_fd, segments, snap_index, snap_term, segment_size, prealloc):
        for name in os.listdir(dirpath):
            if name.endswith(".wal.tmp"):  # a cut that never completed
                os.unlink(os.path.join(dirpath, name))
        for (a, _, an), (b, _, bn) in zip(segments, segments[1:]):
            if b != a + 1:
                raise WALCorruptError("%s: segment sequence jumps from %s to %s" % (dirpath, an, bn))
        # Like etcd's searchIndex: the last segment whose first index is <= the snapshot index.
        start = 0
        for i in range(len(segments) - 1, -1, -1):
            if segments[i][1] <= snap_index:
                start = i
                break
        all_segments = segments
        segments = segments[start:]

        rs = ReadState()
        ents = rs.entries
        metadata = None
        found_snap = snap_index == 0
        last_marker = 0
        prev = None
        tail_scan = None
        for i, (_seq, _first, name) in enumerate(segments):
            path = os.path.join(dirpath, name)
            data = read_data(path)
            scan = rec.scan_segment(data, path, prev, tail=i == len(segments) - 1)
            prev = scan.last_crc if scan.records else prev
            tail_scan = scan
            for rtype, payload in scan.records:
                if rtype == rec.ENTRY:
                    e = raftpb.Entry.FromString(payload)
                    if e.Index > snap_index:
                        up = e.Index - snap_index - 1
                        if up > len(ents):
                            have = ents[-1].Index if ents else snap_index
                            raise WALCorruptError("%s: entry %d follows entry %d: gap in the log"
                                                  % (path, e.Index, have))
                        del ents[up:]
                        ents.append(e)
                elif rtype == rec.STATE:
                    rs.hard_state = raftpb.HardState.FromString(payload)
                elif rtype == rec.METADATA:
                    md = bytes(payload)
                    if metadata is None:
                        metadata = md
                    elif md != metadata:
                        raise WALCorruptError("%s: metadata differs from earlier segments" % path)
                elif rtype == rec.SNAPSHOT:
                    try:
                        index, term = rec.decode_snapshot(payload)
                    except ValueError as exc:
                        raise WALCorruptError("%s: %s" % (path, exc)) from None
                    rs.snapshots.append((index, term))
                    last_marker = max(last_marker, index)
                    if index == snap_index:
                        if term != snap_term:
                            raise WALCorruptError(
                                "%s: snapshot marker %d has term %d, expected %d"
                                % (path, index, term, snap_term))
                        found_snap = True
            if scan.torn:
                rs.repaired = True
        if metadata is None:
            if len(segments) > 1 or tail_scan.records:
                raise WALCorruptError("%s: no metadata record" % dirpath)
            raise WALCorruptError("%s: the only segment holds no valid record" % dirpath)
        if not found_snap:
            raise WALCorruptError("%s: snapshot marker (index %d, term %d) not found"
                                  % (dirpath, snap_index, snap_term))
        rs.metadata = metadata

        # Reopen the tail for append: cut off what the scan rejected, then extend again.
        tail_name = segments[-1][2]
        tail_path = os.path.join(dirpath, tail_name)
        fd = os.open(tail_path, os.O_WRONLY)
        try:
            end = tail_scan.end
            crc = prev if prev is not None else 0
            if tail_scan.torn:
                # Past ``end`` there is only zeros unless the tail was torn.
                os.ftruncate(fd, end)
                if prealloc:
                    preallocate(fd, segment_size)
                os.fsync(fd)
            elif prealloc and os.fstat(fd).st_size < segment_size:
                preallocate(fd, segment_size)
            if not tail_scan.records:
                # The tail lost even its head record: write the head again so the segment can
                # be verified on its own.
                head = bytearray()
                crc = rec.append_record(head, rec.METADATA, metadata, crc)
                if not _empty_state(rs.hard_state):
                    crc = rec.append_record(head, rec.STATE, rs.hard_state.SerializeToString(), crc)
                pwrite_all(fd, head, 0)
                fdatasync(fd)
                end = len(head)
        except BaseException:
            os.close(fd)
            raise
        last_index = max(ents[-1].Index if ents else 0, snap_index, last_marker)
        state = raftpb.HardState()
        state.CopyFrom(rs.hard_state)
        wal = cls(dirpath, dir_fd, metadata, list(all_segments), fd, end, crc,
                  last_index, state, segment_size, prealloc)
        return wal, rs

    # ------------------------------------------------------------------ writing

    @property
    def last_index(self) -> int:
        return self._last_index

    @property
    def hard_state(self):
        return self._state

    def save(self, hard_state, entries, *, sync: bool = True) -> None:
        """Append ``entries`` then ``hard_state`` in one write; fdatasync once if ``sync``.

        Entries at or below last_index replace the log from their index on (raft truncation on
        conflict) -- replay applies the same rule. An empty hard state is not recorded.
        """
        buf = bytearray()
        with self._writing():
            crc = self._crc
            # append_record inlined: this loop is the write path's whole CPU cost.
            pack, u32, entry_type = rec.BODY_HEADER.pack, rec.U32.pack, rec.ENTRY
            for e in entries:
                body = e.SerializeToString()
                body = pack(len(body), entry_type, crc) + body
                crc = crc32c(body)
                buf += u32(crc)
                buf += body
            has_state = hard_state is not None and not _empty_state(hard_state)
            if has_state:
                crc = rec.append_record(buf, rec.STATE, hard_state.SerializeToString(), crc)
            if not buf:
                if sync and self._unsynced:
                    self._sync_locked()
                return
            self._append_locked(buf)
            self.bytes_written += len(buf)
            self._crc = crc
            if has_state:
                self._state.CopyFrom(hard_state)
            if entries:
                self._last_index = entries[-1].Index
            if self._offset >= self._segment_size:
                self._cut_locked()
            elif sync:
                self._sync_locked()

    def save_snapshot(self, index: int, term: int) -> None:
        """Record that a snapshot at (index, term) exists; synced before returning."""
        buf = bytearray()
        with self._writing():
            crc = rec.append_record(buf, rec.SNAPSHOT, rec.encode_snapshot(index, term), self._crc)
            self._append_locked(buf)
            self._crc = crc
            if index > self._last_index:
                self._last_index = index
            if self._offset >= self._segment_size:
                self._cut_locked()
            else:
                self._sync_locked()

    def _append_locked(self, buf) -> None:
        """Write ``buf`` at the end of the tail, never leaving more than rec.TEAR_WINDOW bytes
        unsynced: a batch bigger than the window is written in pieces with an fdatasync between.
        That bound is what lets open() tell a torn write from damage to durable records."""
        window = rec.TEAR_WINDOW
        if self._unsynced_bytes + len(buf) <= window:
            pwrite_all(self._fd, buf, self._offset)
            self._offset += len(buf)
            self._unsynced_bytes += len(buf)
            self._unsynced = True
            return
        view = memoryview(buf)
        while view:
            if self._unsynced_bytes >= window:
                self._sync_locked()
            chunk = view[:window - self._unsynced_bytes]
            pwrite_all(self._fd, chunk, self._offset)
            self._offset += len(chunk)
            self._unsynced_bytes += len(chunk)
            self._unsynced = True
            view = view[len(chunk):]

    def _cut_locked(self) -> None:
        """Seal the tail and start segment seq+1, named after the next index to be written."""
        os.ftruncate(self._fd, self._offset)  # drop preallocated space past the last record
        self._sync_locked()
        seq = self._segments[-1][0] + 1
        first = self._last_index + 1
        name = segment_name(seq, first)
        head = bytearray()
        crc = rec.append_record(head, rec.METADATA, self._metadata, self._crc)
        if not _empty_state(self._state):
            crc = rec.append_record(head, rec.STATE, self._state.SerializeToString(), crc)
        fd = self._write_new_segment(self.dirpath, name, head,
                                     self._segment_size if self._prealloc else 0)
        os.close(self._fd)
        self._fd = fd
        self._offset = len(head)
        self._crc = crc
        self._segments.append((seq, first, name))

    def cut(self) -> None:
        """Start a new segment now (tests and tools; save() cuts on its own by size)."""
        with self._writing():
            self._cut_locked()

    def _sync_locked(self) -> None:
        observer = self.fsync_observer
        if observer is None:
            fdatasync(self._fd)
        else:
            t0 = time.perf_counter()
            fdatasync(self._fd)
            observer(time.perf_counter() - t0)
        self._unsynced = False
        self._unsynced_bytes = 0

    def sync(self) -> None:
        with self._writing():
            self._sync_locked()

    def release_to(self, index: int) -> None:
        """Delete segments that hold only entries below the segment holding ``index``.

        The tail segment is never removed. Call with the index of a snapshot that is durable.
        """
        with self._writing():
            keep = 0
            for i, (_seq, first, _name) in enumerate(self._segments):
                if first > index:
                    break
                keep = i
            keep = min(keep, len(self._segments) - 1)
            if keep == 0:
                return
            for _seq, _first, name in self._segments[:keep]:
                os.unlink(os.path.join(self.dirpath, name))
            del self._segments[:keep]
            os.fsync(self._dir_fd)

    @property
    def segments(self) -> list:
        """Names of the segment files this WAL holds, oldest first."""
        return [name for _s, _f, name in self._segments]

    def _check_open(self) -> None:
        if self._fd is None:
            raise WALError("%s: WAL is closed" % self.dirpath)
        if self._failed is not None:
            raise WALError("%s: WAL unusable after an earlier I/O failure: %s"
                           % (self.dirpath, self._failed))

    @contextlib.contextmanager
    def _writing(self):
        """Serialise a mutation; an OSError poisons the WAL for good.

        After a failed write or fsync the file's durable contents are unknown (the kernel may
        have dropped the dirty pages, see PostgreSQL's "fsyncgate"), so carrying on could
        acknowledge data that is not on disk. etcd panics here; we refuse every later call and
        let the caller restart, which re-verifies the log from disk.
        """
        with self._mu:
            self._check_open()
            try:
                yield
            except OSError as exc:
                self._failed = exc
                raise WALError("%s: I/O failure, WAL is now unusable: %s" % (self.dirpath, exc)) from exc

    def close(self) -> None:
        with self._mu:
            if self._fd is None:
                return
            try:
                if self._unsynced and self._failed is None:
                    self._sync_locked()
            finally:
                os.close(self._fd)
                self._fd = None
                os.close(self._dir_fd)  # releases the flock
                self._dir_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
