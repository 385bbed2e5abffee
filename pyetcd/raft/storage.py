"""The read-only log storage protocol Raft consumes, and MemoryStorage.

Raft only reads stable storage. The application writes it: it appends Ready.entries, sets
Ready.hard_state, applies Ready.snapshot, and compacts after taking its own snapshots.

The protocol (duck-typed, as etcd's raft.Storage):

    initial_state() -> (HardState, ConfState)
    entries(lo, hi, max_size) -> list of entries [lo, hi), at least one if any, limited by size
    term(i) -> term of entry i (i may be the snapshot index, first_index()-1)
    first_index() / last_index()
    snapshot() -> Snapshot

entries() and term() raise Compacted for an index below the log's start and Unavailable
for one past its end; snapshot() may raise SnapshotTemporarilyUnavailable.
"""
from .types import (ConfState, Entry, HardState, RaftError, Snapshot, SnapshotMetadata,
                    limit_size)


class Compacted(RaftError):
    """requested index is unavailable due to compaction"""


class Unavailable(RaftError):
    """requested entry at index is unavailable"""


class SnapOutOfDate(RaftError):
    """requested index is older than the existing snapshot"""


class SnapshotTemporarilyUnavailable(RaftError):
    """snapshot is temporarily unavailable"""


class MemoryStorage:
    """Storage backed by a list. ents[0] is a dummy holding the snapshot's index and term.

    Invariant: ents[i].index == ents[0].index + i for every i.
    """

    def __init__(self):
        self.hard_state = HardState()
        self.snap = Snapshot()
        self.ents = [Entry(0, 0)]

    # --- the read-only protocol -----------------------------------------------------------

    def initial_state(self):
        return self.hard_state, self.snap.metadata.conf_state

    def entries(self, lo, hi, max_size=None):
        ents = self.ents
        offset = ents[0].index
        if lo <= offset:
            raise Compacted()
        if hi > offset + len(ents):
            raise Unavailable("entries' hi(%d) is out of bound lastindex(%d)" % (
                hi, offset + len(ents) - 1))
        if len(ents) == 1:  # only the dummy entry
            raise Unavailable()
        out = ents[lo - offset:hi - offset]
        if max_size is not None:
            out = limit_size(out, max_size)
        return out

    def term(self, i):
        ents = self.ents
        offset = ents[0].index
        if i < offset:
            raise Compacted()
        if i - offset >= len(ents):
            raise Unavailable()
        return ents[i - offset].term

    def last_index(self):
        return self.ents[0].index + len(self.ents) - 1

    def first_index(self):
        return self.ents[0].index + 1

    def snapshot(self):
        return self.snap

    # --- writes, by the application ---------------------------------------------------------

    def set_hard_state(self, hs):
        self.hard_state = HardState(hs.term, hs.vote, hs.commit)

    def apply_snapshot(self, snap):
        """Replace the whole log with snap (a snapshot received from the leader)."""
        if self.snap.metadata.index >= snap.metadata.index:
            raise SnapOutOfDate()
        self.snap = snap
        self.ents = [Entry(snap.metadata.term, snap.metadata.index)]

    def create_snapshot(self, i, cs=None, data=b""):
        """Record a snapshot of the applied state at index i (then compact(i) to drop the log)."""
        if i <= self.snap.metadata.index:
            raise SnapOutOfDate()
        offset = self.ents[0].index
        if i > self.last_index():
            raise ValueError("snapshot %d is out of bound lastindex(%d)" % (i, self.last_index()))
        md = SnapshotMetadata(cs if cs is not None else self.snap.metadata.conf_state,
                              i, self.ents[i - offset].term)
        self.snap = Snapshot(data, md)
        return self.snap

    def compact(self, compact_index):
        """Drop entries before compact_index; compact_index becomes the new dummy entry."""
        offset = self.ents[0].index
        if compact_index <= offset:
            raise Compacted()
        if compact_index > self.last_index():
            raise ValueError("compact %d is out of bound lastindex(%d)" % (
                compact_index, self.last_index()))
        i = compact_index - offset
        dummy = self.ents[i]
        self.ents = [Entry(dummy.term, dummy.index)] + self.ents[i + 1:]

    def append(self, entries):
        """Append entries, replacing any conflicting suffix. Old (compacted) parts are ignored."""
        if not entries:
            return
        first = self.first_index()
        last = entries[-1].index
        if last < first:
            return
        if first > entries[0].index:
            entries = entries[first - entries[0].index:]
        offset = entries[0].index - self.ents[0].index
        n = len(self.ents)
        if n > offset:
            self.ents = self.ents[:offset]
            self.ents.extend(entries)
        elif n == offset:
            self.ents.extend(entries)
        else:
            raise ValueError("missing log entry [last: %d, append at: %d]" % (
                self.last_index(), entries[0].index))

    def conf_state(self):
        return self.snap.metadata.conf_state


def new_memory_storage_with_conf(voters=(), learners=(), index=0, term=0):
    """A MemoryStorage that starts from a snapshot holding the given membership."""
    s = MemoryStorage()
    if index:
        s.apply_snapshot(Snapshot(b"", SnapshotMetadata(ConfState(voters, learners), index, term)))
    else:
        s.snap.metadata.conf_state = ConfState(voters, learners)
    return s
