"""The MVCC key-value store (etcd server/mvcc/kvstore.go, kvstore_txn.go, kvstore_compaction.go).

Values live in the backend's "key" bucket under their revision key; the key index lives in
memory and is rebuilt from the bucket on start. A write transaction gives every change main
revision rev+1 and sub revisions 0, 1, ...; its changes become watch events at end().

Locking: one re-entrant lock serialises the store. A write transaction holds it from write()
to end(), like etcd's batch-tx lock, so readers in other threads never see half a txn.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import crc32c

from pyetcd.errors import ErrCompacted, ErrFutureRev
from pyetcd.pb import kv as mvccpb
from pyetcd.storage import backend as bk
from pyetcd.storage.mvcc import revision as rv
from pyetcd.storage.mvcc.index import TreeIndex
from pyetcd.storage.mvcc.revision import SUB_BITS, SUB_MASK

SCHEDULED_COMPACT_KEY = b"scheduledCompactRev"
FINISHED_COMPACT_KEY = b"finishedCompactRev"

_KeyValue = mvccpb.KeyValue
_Event = mvccpb.Event
_PUT = mvccpb.Event.PUT
_DELETE = mvccpb.Event.DELETE
_KEY = bk.KEY
_META = bk.META
_rev_to_bytes = rv.rev_to_bytes
_tombstone_bytes = rv.tombstone_bytes
_bytes_to_rev = rv.bytes_to_rev
_event_from_bytes = _Event.FromString
_parse_kv = _KeyValue.FromString


def _py_decode_kv_head(v: bytes):
    m = _KeyValue.FromString(v)
    return m.key, m.create_revision, m.version, m.lease


try:  # one C encoding for the backend record and the event (native/mvcc_index.pyx)
    from pyetcd._native.mvcc_index import decode_kv_head as _decode_kv_head
    from pyetcd._native.mvcc_index import encode_put_event as _encode_put_event
except ImportError:
    _encode_put_event = None
    _decode_kv_head = _py_decode_kv_head


@dataclass(slots=True)
class RangeResult:
    kvs: list = field(default_factory=list)
    count: int = 0
    rev: int = 0


def index_end(end: bytes) -> bytes | None:
    """Client range_end -> index convention: b"" one key (None), b"\\0" no upper bound (b"")."""
    if not end:
        return None
    if end == b"\x00":
        return b""
    return end


class KVStore:
    """A revisioned key-value store over a Backend."""

    def __init__(self, be: bk.Backend, *, compaction_batch_limit: int = 1000, index_factory=None,
                 cache_bytes: int = 64 << 20):
        self._index_factory = index_factory or TreeIndex
        self.compaction_batch_limit = compaction_batch_limit
        # Values by revision (serialized KeyValue). A revision's record never changes, so the
        # cache is never stale; it only saves a backend lookup (recent writes, hot keys, the
        # previous value a put returns). Bounded by cache_bytes: emptied when full.
        self.cache_bytes = cache_bytes
        self._cache: dict[int, bytes] = {}
        self._cache_used = 0
        self._lock = threading.RLock()
        self._open(be)

    def _open(self, be: bk.Backend) -> None:
        self.be = be
        self._cache = {}
        self._cache_used = 0
        self._index = self._index_factory()
        # Invariants: _rev is the revision of the last completed write txn (1 when empty);
        # _compact_rev is the last compaction's revision, -1 if none (etcd's compactMainRev).
        self._rev = 1
        self._compact_rev = -1
        self._compaction = None  # a compaction whose backend deletes are not all done
        self._restore()

    # -- state --------------------------------------------------------------------------

    @property
    def rev(self) -> int:
        return self._rev

    @property
    def compact_rev(self) -> int:
        return self._compact_rev

    @property
    def index(self):
        return self._index

    def key_count(self) -> int:
        """Keys with an index entry (live or with history), for metrics."""
        return len(self._index)

    # -- reads --------------------------------------------------------------------------

    def range(self, key: bytes, end: bytes = b"", *, rev: int = 0, limit: int = 0,
              count_only: bool = False, keys_only: bool = False, raw: bool = False) -> RangeResult:
        """Keys in [key, end) at ``rev`` (etcd's end conventions). count_only: no kvs;
        keys_only: values cleared; raw: kvs are serialized KeyValue bytes, unparsed (for a
        caller that parses them straight into a response)."""
        with self._lock:
            return self._range(key, end, self._rev, rev, limit, count_only, keys_only, raw)

    def _range(self, key, end, cur_rev, rev, limit, count_only, keys_only, raw=False) -> RangeResult:
        if rev > cur_rev:
            raise ErrFutureRev
        if rev <= 0:
            rev = cur_rev
        if rev < self._compact_rev:
            raise ErrCompacted
        iend = index_end(end)
        if count_only:
            return RangeResult([], self._index.count_revisions(key, iend, rev), cur_rev)
        revs, total = self._index.revisions(key, iend, rev, limit)
        if not revs:
            return RangeResult([], total, cur_rev)
        if raw and not keys_only:
            return RangeResult(self._fetch_raw(revs), total, cur_rev)
        kvs = self._fetch(revs)
        if keys_only:
            for m in kvs:
                m.ClearField("value")
        return RangeResult(kvs, total, cur_rev)

    def _fetch_raw(self, revs: list) -> list:
        """Serialized KeyValues of ``revs`` (cache, then backend)."""
        cache = self._cache
        if len(revs) == 1:
            v = cache.get(revs[0])
            if v is not None:
                return [v]
        out = [cache.get(r) for r in revs]
        miss = [i for i, v in enumerate(out) if v is None]
        if miss:
            vals = self.be.get_many(_KEY, [_rev_to_bytes(revs[i]) for i in miss])
            for i, v in zip(miss, vals):
                if v is None:
                    r = revs[i]
                    raise RuntimeError(f"mvcc: revision {r >> SUB_BITS}_{r & SUB_MASK} in index but "
                                       "not in backend")
                out[i] = v
                self._cache_put(revs[i], v)
        return out

    def _fetch(self, revs: list) -> list:
        parse = _KeyValue.FromString
        return [parse(v) for v in self._fetch_raw(revs)]

    def _cache_put(self, r: int, v: bytes) -> None:
        n = len(v) + 100  # + rough per-entry overhead
        if self._cache_used + n > self.cache_bytes:
            self._cache.clear()
            self._cache_used = 0
            if n > self.cache_bytes:
                return
        self._cache[r] = v
        self._cache_used += n

    def history(self, min_rev: int, max_rev: int = 0) -> list:
        """Events with min_rev <= main revision <= max_rev (0: current), in revision order, read
        from the backend (what a catching-up watcher needs). Caller checks compaction."""
        with self._lock:
            if max_rev <= 0:
                max_rev = self._rev
            out = []
            for k, v in self.be.range(_KEY, rv.main_to_bytes(max(min_rev, 0)), rv.main_to_bytes(max_rev + 1)):
                if len(k) == 18:  # tombstone: the record holds only the key
                    ev = _Event(type=_DELETE)
                    ev.kv.MergeFromString(v)
                    ev.kv.mod_revision = _bytes_to_rev(k) >> SUB_BITS
                else:
                    ev = _Event()
                    ev.kv.MergeFromString(v)  # parsed in place: no copy into the event
                out.append(ev)
            return out

    # -- writes -------------------------------------------------------------------------

    def write(self) -> "TxnWrite":
        """Begin a write txn; it holds the store lock until end()."""
        self._lock.acquire()
        return TxnWrite(self)

    def put(self, key: bytes, value: bytes, lease: int = 0):
        """A one-op write txn. Returns (previous KeyValue or None, events)."""
        tw = self.write()
        try:
            prev = tw.put(key, value, lease)
        finally:
            evs = tw.end()
        return prev, evs

    def delete_range(self, key: bytes, end: bytes = b""):
        """A one-op delete txn. Returns (deleted previous KeyValues, events)."""
        tw = self.write()
        try:
            prevs = tw.delete_range(key, end)
        finally:
            evs = tw.end()
        return prevs, evs

    # -- compaction ---------------------------------------------------------------------

    def compact(self, rev: int, *, wait: bool = True) -> None:
        """Compact history at ``rev`` (etcd's Compact).

        The index is compacted and the compact revision persisted at once; from then on reads
        below ``rev`` fail with ErrCompacted. Removing the dropped revisions from the backend
        happens in batches of compaction_batch_limit: all of them before returning if
        ``wait``, else one batch per compact_step() call (as etcd runs it in the background).
        """
        with self._lock:
            self._finish_compaction()  # one compaction at a time, in order
            self._update_compact_rev(rev)
            self._start_compaction(rev)
            if wait:
                self._finish_compaction()

    def compact_step(self) -> bool:
        """Remove one batch of a pending compaction; True when none is left pending."""
        with self._lock:
            return self._unsafe_compact_step()

    @property
    def compaction_pending(self) -> bool:
        return self._compaction is not None

    def _update_compact_rev(self, rev: int) -> None:
        if rev <= self._compact_rev:
            raise ErrCompacted
        if rev > self._rev:
            raise ErrFutureRev
        self._compact_rev = rev
        # Persist the intent first, so a restart resumes an interrupted compaction.
        self.be.put(_META, SCHEDULED_COMPACT_KEY, rv.main_rev_bytes(rev))
        self.be.force_commit()

    def _start_compaction(self, rev: int) -> None:
        keep = self._index.compact(rev)
        self._cache = {r: v for r, v in self._cache.items() if r in keep or (r >> SUB_BITS) > rev}
        self._cache_used = sum(len(v) + 100 for v in self._cache.values())
        # [revision, revisions kept at or below it, next backend key to look at]
        self._compaction = [rev, keep, b""]

    def _finish_compaction(self) -> None:
        while not self._unsafe_compact_step():
            pass

    def _unsafe_compact_step(self) -> bool:
        c = self._compaction
        if c is None:
            return True
        rev, keep, start = c
        be = self.be
        limit = self.compaction_batch_limit
        keys = be.keys(_KEY, start, rv.main_to_bytes(rev + 1), limit)
        dead = [k for k in keys if _bytes_to_rev(k) not in keep]
        if dead:
            be.delete_many(_KEY, dead)
        if len(keys) < limit:
            be.put(_META, FINISHED_COMPACT_KEY, rv.main_rev_bytes(rev))
            self._compaction = None
            return True
        c[2] = keys[-1] + b"\x00"  # just above the last key seen
        be.force_commit()  # commit each batch of deletes, as etcd does
        return False

    # -- hash ---------------------------------------------------------------------------

    def hash_kv(self, rev: int = 0) -> tuple[int, int, int]:
        """etcd's HashByRev: crc32c over the key bucket up to ``rev``, skipping what compaction
        at compact_rev has dropped. Returns (hash, current revision, compact revision)."""
        with self._lock:
            compact, cur = self._compact_rev, self._rev
            if 0 < rev <= compact:
                raise ErrCompacted
            if rev > cur:
                raise ErrFutureRev
            if rev <= 0:
                rev = cur
            keep = self._index.keep(rev)
            lower = compact + 1
            _crc = crc32c.crc32c
            h = _crc(b"key")
            for k, v in self.be.range(_KEY, b"", rv.main_to_bytes(rev + 1)):
                if keep:
                    r = _bytes_to_rev(k)
                    if (r >> SUB_BITS) < lower and r not in keep:
                        continue
                h = _crc(k + v, h)
            return h, cur, compact

    # -- restore ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the backend (committing its batch)."""
        with self._lock:
            self.be.close()

    def restore(self, be: bk.Backend) -> None:
        """Switch to another backend (e.g. one received in a snapshot) and rebuild from it."""
        with self._lock:
            self._open(be)

    def _restore(self) -> None:
        be = self.be
        v = be.get(_META, FINISHED_COMPACT_KEY)
        if v is not None:
            self._compact_rev = _bytes_to_rev(v) >> SUB_BITS
        v = be.get(_META, SCHEDULED_COMPACT_KEY)
        scheduled = _bytes_to_rev(v) >> SUB_BITS if v is not None else 0
        cur = 1
        idx = self._index
        restore_rev = idx.restore_rev
        head = _decode_kv_head
        leases: dict[bytes, int] = {}
        for k, v in be.range(_KEY, rv.main_to_bytes(1), None):
            r = _bytes_to_rev(k)
            cur = r >> SUB_BITS
            key, created, ver, lease = head(v)
            tomb = len(k) == 18
            restore_rev(key, r, tomb, created << SUB_BITS, ver)
            if lease and not tomb:
                leases[key] = lease
            elif key in leases:
                del leases[key]
        # key -> lease of each live key with a lease, for the lessor to re-attach on start
        # (etcd's restore does the same with keyToLease)
        self.restored_leases = leases
        # keys in [compact-N, compact] may all have been compacted away
        self._rev = max(cur, self._compact_rev)
        if scheduled != 0 and scheduled > self._compact_rev:
            self._update_compact_rev(scheduled)
            self._start_compaction(scheduled)
            self._finish_compaction()


class TxnWrite:
    """A write transaction: every change gets main revision begin_rev + 1."""

    __slots__ = ("_s", "_idx", "_be", "begin_rev", "_events", "_done")

    def __init__(self, s: KVStore):
        self._s = s
        self._idx = s._index
        self._be = s.be
        self.begin_rev = s._rev
        self._events: list = []
        self._done = False

    @property
    def changes(self) -> int:
        return len(self._events)

    def range(self, key: bytes, end: bytes = b"", *, rev: int = 0, limit: int = 0,
              count_only: bool = False, keys_only: bool = False, raw: bool = False) -> RangeResult:
        """As KVStore.range, but seeing this txn's own writes (etcd's storeTxnWrite.Range)."""
        cur = self.begin_rev + 1 if self._events else self.begin_rev
        return self._s._range(key, end, cur, rev, limit, count_only, keys_only, raw)

    def put(self, key: bytes, value: bytes, lease: int = 0, *, prev: bool = True):
        """Put key=value; returns the previous KeyValue (None if absent or prev=False)."""
        r = self.begin_rev + 1
        got = self._idx.get(key, r)
        prev_kv = None
        if got is not None:
            mod, created, ver = got
            c = created >> SUB_BITS
            if prev:
                v = self._s._cache.get(mod)
                prev_kv = _parse_kv(v) if v is not None else self._s._fetch([mod])[0]
        else:
            c = r
            ver = 0
        sub = len(self._events)
        if sub > SUB_MASK:
            raise ValueError("mvcc: too many changes in one write txn")
        idx_rev = (r << SUB_BITS) | sub
        if _encode_put_event is not None:
            kvb, evb = _encode_put_event(key, value, c, r, ver + 1, lease)
            ev = _event_from_bytes(evb)
        else:
            ev = _Event(type=_PUT, kv=_KeyValue(key=key, value=value, create_revision=c, mod_revision=r,
                                                 version=ver + 1, lease=lease))
            kvb = ev.kv.SerializeToString()
        self._be.put(_KEY, _rev_to_bytes(idx_rev), kvb)
        self._s._cache_put(idx_rev, kvb)
        self._idx.put(key, idx_rev)
        self._events.append(ev)
        return prev_kv

    def delete_range(self, key: bytes, end: bytes = b"") -> list:
        """Delete the live keys in the range; returns their previous KeyValues in key order."""
        cur = self.begin_rev + 1 if self._events else self.begin_rev
        keys, revs = self._idx.range(key, index_end(end), cur)
        if not keys:
            return []
        prevs = self._s._fetch(revs)
        if len(self._events) + len(keys) > SUB_MASK + 1:
            raise ValueError("mvcc: too many changes in one write txn")
        r = self.begin_rev + 1
        for k in keys:
            idx_rev = (r << SUB_BITS) | len(self._events)
            self._be.put(_KEY, _tombstone_bytes(idx_rev), _KeyValue(key=k).SerializeToString())
            self._idx.tombstone(k, idx_rev)
            self._events.append(_Event(type=_DELETE, kv=_KeyValue(key=k, mod_revision=r)))
        return prevs

    def end(self) -> list:
        """Finish: bump the store revision if anything changed; returns the events in order."""
        if self._done:
            raise RuntimeError("write txn already ended")
        self._done = True
        s = self._s
        try:
            if self._events:
                s._rev = self.begin_rev + 1
        finally:
            s._lock.release()
        # No commit here: the server commits the backend only between log entries, after it
        # has stored the entry's consistent index, so data and index always commit together.
        return self._events

    def __enter__(self) -> "TxnWrite":
        return self

    def __exit__(self, *exc) -> None:
        if not self._done:
            self.end()
