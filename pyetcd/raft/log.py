"""The Raft log: stable storage (read-only) plus the unstable tail not yet persisted.

Indexes: storage holds [first_index, stable_last]; Unstable holds entries from `offset` on,
and possibly an incoming snapshot. committed and applied satisfy
applied <= committed <= last_index (Raft paper, section 5.3).
"""
from .storage import Compacted, Unavailable
from .types import limit_size, native_disabled


class PyUnstable:
    """Entries (and maybe a snapshot) that the application has not yet persisted.

    Invariant: entries[i].index == offset + i; with a snapshot, offset == snapshot index + 1.
    """
    __slots__ = ("snapshot", "entries", "offset")

    def __init__(self, offset=0):
        self.snapshot = None
        self.entries = []
        self.offset = offset

    def maybe_first_index(self):
        if self.snapshot is not None:
            return self.snapshot.metadata.index + 1
        return None

    def maybe_last_index(self):
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return None

    def maybe_term(self, i):
        if i < self.offset:
            s = self.snapshot
            if s is not None and s.metadata.index == i:
                return s.metadata.term
            return None
        j = i - self.offset
        if j < len(self.entries):
            return self.entries[j].term
        if not self.entries and self.snapshot is not None and self.snapshot.metadata.index == i:
            return self.snapshot.metadata.term
        return None

    def stable_to(self, i, t):
        gt = self.maybe_term(i)
        if gt is None:
            return
        # Only drop entries if the term still matches: a newer leader may have replaced them.
        if gt == t and i >= self.offset:
            del self.entries[:i + 1 - self.offset]
            self.offset = i + 1

    def stable_snap_to(self, i):
        if self.snapshot is not None and self.snapshot.metadata.index == i:
            self.snapshot = None

    def restore(self, snap):
        self.offset = snap.metadata.index + 1
        self.entries = []
        self.snapshot = snap

    def truncate_and_append(self, ents):
        after = ents[0].index
        n = len(self.entries)
        if after == self.offset + n:
            self.entries.extend(ents)
        elif after <= self.offset:
            # Replace everything unstable: the new entries start at or before our offset.
            self.offset = after
            self.entries = list(ents)
        else:
            del self.entries[after - self.offset:]
            self.entries.extend(ents)

    def slice(self, lo, hi):
        return self.entries[lo - self.offset:hi - self.offset]


Unstable = PyUnstable
if not native_disabled():
    try:
        from pyetcd._native.raft_log import Unstable  # noqa: F811
    except ImportError:
        pass


class RaftLog:
    def __init__(self, storage, logger, max_next_ents_size=None, unstable_cls=None):
        self.storage = storage
        self.logger = logger
        self.max_next_ents_size = max_next_ents_size
        first = storage.first_index()
        last = storage.last_index()
        self.unstable = (unstable_cls or Unstable)(last + 1)
        # Highest index known committed (quorum-replicated); applied: handed to the app.
        self.committed = first - 1
        self.applied = first - 1

    def __repr__(self):
        u = self.unstable
        return "committed=%d, applied=%d, unstable.offset=%d, len(unstable.Entries)=%d" % (
            self.committed, self.applied, u.offset, len(u.entries))

    # --- indexes and terms --------------------------------------------------------------

    def first_index(self):
        i = self.unstable.maybe_first_index()
        return i if i is not None else self.storage.first_index()

    def last_index(self):
        i = self.unstable.maybe_last_index()
        return i if i is not None else self.storage.last_index()

    def last_term(self):
        return self.term_or_zero(self.last_index())

    def term(self, i):
        """Term of entry i; 0 outside [first_index-1, last_index]; raises Compacted below."""
        u = self.unstable
        if i >= u.offset:
            t = u.maybe_term(i)
            return 0 if t is None else t
        t = u.maybe_term(i)
        if t is not None:
            return t
        if i < self.first_index() - 1:
            raise Compacted()
        try:
            return self.storage.term(i)
        except Unavailable:
            return 0

    def term_or_zero(self, i):
        try:
            return self.term(i)
        except Compacted:
            return 0

    def match_term(self, i, t):
        try:
            return self.term(i) == t
        except Compacted:
            return False

    def is_up_to_date(self, lasti, term):
        """Raft paper 5.4.1: a candidate's log is at least as up to date as ours."""
        lt = self.last_term()
        return term > lt or (term == lt and lasti >= self.last_index())

    # --- appending --------------------------------------------------------------------

    def maybe_append(self, index, log_term, committed, ents):
        """Follower side of MsgApp. Returns the new last index, or None if (index, log_term)
        does not match our log (the leader must then probe further back)."""
        if not self.match_term(index, log_term):
            return None
        lastnewi = index + len(ents)
        if ents:
            ci = self.find_conflict(ents)
            if ci:
                if ci <= self.committed:
                    raise RuntimeError("entry %d conflict with committed entry [committed(%d)]"
                                       % (ci, self.committed))
                self.append(ents[ci - ents[0].index:])
        self.commit_to(min(committed, lastnewi))
        return lastnewi

    def append(self, ents):
        if not ents:
            return self.last_index()
        after = ents[0].index - 1
        if after < self.committed:
            raise RuntimeError("after(%d) is out of range [committed(%d)]" % (after, self.committed))
        self.unstable.truncate_and_append(ents)
        return self.last_index()

    def find_conflict(self, ents):
        """Index of the first entry of ents that is new or conflicts with ours, or 0."""
        last = self.last_index()
        for e in ents:
            if e.index > last:
                return e.index  # everything from here is new: no per-entry lookups needed
            if not self.match_term(e.index, e.term):
                if e.index <= last:
                    self.logger.info(
                        "found conflict at index %d [existing term: %d, conflicting term: %d]",
                        e.index, self.term_or_zero(e.index), e.term)
                return e.index
        return 0

    def find_conflict_by_term(self, index, term):
        """Largest index <= index whose term is <= term: the leader/follower skip a whole
        term of mismatching entries at once when probing (etcd's fast log backtracking)."""
        li = self.last_index()
        if index > li:
            return index
        while True:
            try:
                t = self.term(index)
            except Compacted:
                return index
            if t <= term:
                return index
            index -= 1

    # --- reading ----------------------------------------------------------------------

    def unstable_entries(self):
        return list(self.unstable.entries)

    def has_next_ents(self):
        off = max(self.applied + 1, self.first_index())
        return self.committed + 1 > off

    def next_ents(self):
        """Committed entries not yet applied, limited by max_next_ents_size."""
        off = max(self.applied + 1, self.first_index())
        if self.committed + 1 > off:
            return self.slice(off, self.committed + 1, self.max_next_ents_size)
        return []

    def has_pending_snapshot(self):
        s = self.unstable.snapshot
        return s is not None and not s.is_empty()

    def snapshot(self):
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    def entries(self, i, max_size=None):
        if i > self.last_index():
            return []
        return self.slice(i, self.last_index() + 1, max_size)

    def all_entries(self):
        while True:
            try:
                return self.entries(self.first_index())
            except Compacted:  # compacted between the two calls: try again
                continue

    def slice(self, lo, hi, max_size=None):
        """Entries [lo, hi). Raises Compacted if lo is below the log's first index."""
        if lo > hi:
            raise ValueError("invalid slice %d > %d" % (lo, hi))
        fi = self.first_index()
        if lo < fi:
            raise Compacted()
        if hi > self.last_index() + 1:
            raise ValueError("slice[%d,%d) out of bound [%d,%d]" % (lo, hi, fi, self.last_index()))
        if lo == hi:
            return []
        off = self.unstable.offset
        ents = None
        if lo < off:
            try:
                ents = self.storage.entries(lo, min(hi, off), max_size)
            except Unavailable:
                raise RuntimeError("entries[%d:%d) is unavailable from storage" % (lo, min(hi, off)))
            # The storage limited the size: do not add unstable entries on top.
            if len(ents) < min(hi, off) - lo:
                return ents
        if hi > off:
            u = self.unstable.slice(max(lo, off), hi)
            ents = list(ents) + u if ents else u
        if max_size is not None:
            ents = limit_size(ents, max_size)
        return ents

    # --- commit/apply/persist bookkeeping -------------------------------------------

    def commit_to(self, tocommit):
        if self.committed < tocommit:
            if self.last_index() < tocommit:
                raise RuntimeError("tocommit(%d) is out of range [lastIndex(%d)]. Was the raft "
                                   "log corrupted, truncated, or lost?" % (tocommit, self.last_index()))
            self.committed = tocommit

    def maybe_commit(self, max_index, term):
        """Raft paper 5.4.2: only an entry of the current term is committed by counting."""
        if max_index > self.committed and self.term_or_zero(max_index) == term:
            self.commit_to(max_index)
            return True
        return False

    def applied_to(self, i):
        if i == 0:
            return
        if self.committed < i or i < self.applied:
            raise RuntimeError("applied(%d) is out of range [prevApplied(%d), committed(%d)]"
                               % (i, self.applied, self.committed))
        self.applied = i

    def stable_to(self, i, t):
        self.unstable.stable_to(i, t)

    def stable_snap_to(self, i):
        self.unstable.stable_snap_to(i)

    def restore(self, snap):
        self.logger.info("log [%s] starts to restore snapshot [index: %d, term: %d]",
                         self, snap.metadata.index, snap.metadata.term)
        self.committed = snap.metadata.index
        self.unstable.restore(snap)
