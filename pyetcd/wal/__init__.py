"""Write-ahead log and snapshot files: the durable source of truth of a member.

    from pyetcd.wal import WAL, WALError, WALCorruptError, ReadState
    from pyetcd.wal.snap import Snapshotter

On-disk format
==============

A WAL is a directory of *segments* named ``%016x-%016x.wal`` % (seq, first_index), like etcd:
``seq`` counts up from 0 without gaps; ``first_index`` is the raft index the segment was cut
for (last saved index + 1). A segment is a sequence of records, each framed as::

    offset 0   u32  crc       CRC-32C (Castagnoli) of bytes 4 .. end of payload
    offset 4   u32  length    payload length
    offset 8   u8   type      1 metadata, 2 entry, 3 state, 4 crc (reserved), 5 snapshot
    offset 9   u32  prev_crc  crc of the preceding record (across segments); 0 for the first
    offset 13  payload

All integers are little-endian. The crc covers length, type and prev_crc as well as the payload,
so every record verifies on its own, and prev_crc chains it to its predecessor, so records that
were reordered, spliced in from elsewhere or dropped are detected (etcd chains its CRC the same
way). Type 0 is never written: zero-filled (preallocated) space never parses as a record.

Payloads: metadata = the opaque bytes given to ``WAL.create`` (every segment starts with it,
then with the current hard state, so a segment can be checked without its predecessors);
entry = ``raftpb.Entry``; state = ``raftpb.HardState``; snapshot = ``<QQ`` (index, term).
The first segment holds metadata and an empty snapshot marker (0, 0), as etcd's does.

Writing
=======

``save(hard_state, entries)`` frames all entry records and then the hard state record into one
buffer, issues one ``pwrite`` and, if ``sync``, one ``fdatasync`` (group commit). When the tail
reaches ``segment_size`` it is trimmed to its last record, synced, and a new segment is made by
writing its head into ``<name>.tmp``, fsyncing, renaming and fsyncing the directory. Segments are
preallocated (``posix_fallocate``) by default, as etcd does. The directory is flock'ed by the
one writer.

Reading and repair
==================

``WAL.open(dir, snapshot_index=, snapshot_term=)`` starts at the last segment whose first index
is <= snapshot_index and verifies every record. Damage (short header, impossible length, bad
type, CRC mismatch) is handled by where it is:

* in the last segment, with nothing that verifies after it (a crash mid-write, a flipped byte
  in the last record, garbage or zeros at the end): a *torn tail*. The segment is truncated to
  the last whole record, ``ReadState.repaired`` is set, and appends continue from there. Only
  records that were still unsynced can be lost this way.
* in the last segment, within the last TEAR_WINDOW bytes of data, with a valid record after it
  but a whole zero-filled 512-byte sector in between: also a torn tail -- a multi-sector write of which a later sector reached the disk and
  an earlier one did not (the same rule as etcd's ``isTornEntry``).
* anywhere else, or any record whose prev_crc does not match: ``WALCorruptError`` naming the
  file and the offset. Nothing is skipped silently.

``ReadState.repaired`` is true when non-zero bytes were thrown away; plain zero-filled
(preallocated) space after the last record is the normal end of a segment, not a repair.

Entries after snapshot_index must be contiguous; an entry record for index i replaces earlier
entries >= i (raft log truncation on conflict). With snapshot_index > 0 a snapshot marker with
that index and term must be present. ``WAL.snapshot_markers(dir)`` lists, read-only, the
markers at or below the saved commit index, for ``Snapshotter.load_newest_available`` -- a
snapshot file written just before a crash may have no marker yet (etcd's ValidSnapshotEntries).

Failures
========

An OSError during a write, fsync or cut makes the WAL refuse every later call (WALError): after
a failed fsync the durable state of the file is unknown, so nothing more may be acknowledged.
Restart and reopen. ``fsync_observer`` (callable(seconds)) and ``bytes_written`` feed metrics.

Tear window: the writer never leaves more than ``record.TEAR_WINDOW`` (8 MiB) written but not
fdatasync'ed -- a bigger batch, or a run of sync=False saves, is synced in pieces -- so a crash
can only tear the last 8 MiB of the tail. The zero-sector rule is believed only there; a zeroed
sector further back is corruption. Known limit: inside that window, a sector zeroed by disk
damage (or a single flipped byte in a sector that was otherwise all zeros) with valid records
after it is taken for a torn write, as in etcd.
"""
from .errors import WALCorruptError, WALError
from .wal import SEGMENT_SIZE, WAL, ReadState

__all__ = ["WAL", "WALError", "WALCorruptError", "ReadState", "SEGMENT_SIZE"]
