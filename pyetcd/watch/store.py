"""The watchable store (etcd server/mvcc/watchable_store.go), over the MVCC KVStore.

Every watcher is in exactly one state:

- **synced**: it has seen everything up to the store's revision; ``notify`` (called after each
  applied write txn, on the apply path) hands it that txn's events at once.
- **unsynced**: it is behind (its start revision is in the past, or it was a victim). The
  background task reads history from the backend in bounded batches of revisions, delivers
  them, and moves the watcher to synced once it reaches the store's revision.
- **victim**: its stream was full when a response was due. The response is kept in
  ``pending`` and the watcher leaves the synced group, so neither the apply loop nor other
  watchers wait for it. When its stream drains, the pending response is sent and the watcher
  rejoins unsynced (or synced, if nothing happened meanwhile).

A watcher whose next revision fell below the compacted revision gets one response with
``compact_revision`` set, and is dropped (etcd's semantics: checked while catching up, with
etcd's strict ``min_rev < compact_rev``).

Invariants: the events of one revision go out in one response; responses go out in revision
order; no revision is skipped or repeated. Everything runs on one asyncio loop (the one that
applies writes), so a step of the background task is atomic with respect to ``notify``.
"""
from __future__ import annotations

import asyncio

from pyetcd.pb import kv as mvccpb
from pyetcd.storage import backend as bk
from pyetcd.storage.mvcc import revision as rv

from .group import Watcher, WatcherGroup, WatchResp

# Revisions read from history per catch-up step (bounds the time one step holds the loop; also
# etcd's watchBatchMaxRevs, the most revisions it puts in one response to one watcher).
BATCH_REVS = 1000
# Bytes of history read per catch-up step: reading stops at the first revision boundary past
# this, so a step's memory (and each catch-up response) stays bounded whatever the values' sizes.
BATCH_BYTES = 1 << 20
# Unsynced watchers considered per step (etcd's maxWatchersPerSync).
MAX_WATCHERS_PER_SYNC = 512
# How long the background task sleeps when unsynced watchers could not progress (etcd: 100ms).
SYNC_INTERVAL = 0.1


class WatchableStore:
    """Watchers over a KVStore-like ``kv`` (``rev``, ``compact_rev``, ``history(min, max)``)."""

    def __init__(self, kv, *, batch_revs: int = BATCH_REVS, batch_bytes: int = BATCH_BYTES,
                 max_watchers_per_sync: int = MAX_WATCHERS_PER_SYNC, sync_interval: float = SYNC_INTERVAL):
        self.kv = kv
        self.batch_revs = batch_revs
        self.batch_bytes = batch_bytes
        self.max_watchers_per_sync = max_watchers_per_sync
        self.sync_interval = sync_interval
        self.synced = WatcherGroup()
        self.unsynced = WatcherGroup()
        self.victims: set[Watcher] = set()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        # counters (metrics / tests)
        self.events_sent = 0
        self.victims_total = 0
        self.history_reads = 0

    # -- watchers ---------------------------------------------------------------------------

    @property
    def rev(self) -> int:
        return self.kv.rev

    def watch(self, wid: int, key: bytes, end: bytes | None, start_rev: int, stream,
              no_put: bool = False, no_delete: bool = False) -> Watcher:
        """Register a watcher. start_rev 0 = from the next revision; a future start_rev waits
        in synced and ignores events below it (etcd's watchableStore.watch)."""
        cur = self.kv.rev
        w = Watcher(wid, key, end, start_rev, stream, no_put, no_delete)
        if start_rev == 0 or start_rev > cur:
            w.min_rev = max(cur + 1, start_rev)
            self.synced.add(w)
        else:
            self.unsynced.add(w)
            self.wake()
        return w

    def cancel(self, w: Watcher) -> None:
        """Forget a watcher, wherever it is; nothing more is sent for it."""
        w.canceled = True
        w.pending = None
        self.victims.discard(w)
        if not self.synced.delete(w):
            self.unsynced.delete(w)

    def progress(self, w: Watcher) -> None:
        """A progress notification (no events, current revision), only for a synced watcher;
        when its stream is full it is receiving events and needs none (etcd)."""
        if w in self.synced:
            w.send(WatchResp(w.id, [], self.kv.rev))

    def restore(self, kv=None) -> None:
        """The KV store was replaced (a snapshot was installed; pass the new store if it is a new
        object): every synced watcher catches up again from its own next revision, from the new
        history (etcd's watchableStore.Restore)."""
        if kv is not None:
            self.kv = kv
        for w in list(self.synced.watchers):
            self.synced.delete(w)
            self.unsynced.add(w)
        self.wake()

    def counts(self) -> dict:
        return {"synced": len(self.synced), "unsynced": len(self.unsynced), "victims": len(self.victims)}

    # -- the apply path ---------------------------------------------------------------------

    def notify(self, events: list) -> None:
        """Deliver one applied write txn's events (all of one revision) to synced watchers.
        A watcher whose stream is full becomes a victim; nobody waits for it."""
        synced = self.synced
        if not synced.watchers or not events:
            return
        rev = events[0].kv.mod_revision
        for w, evs in synced.batch(events).items():
            n = len(evs)
            resp = WatchResp(w.id, evs, rev)
            w.min_rev = rev + 1  # keeps the invariant for synced watchers too (see restore)
            if w.send(resp):
                self.events_sent += n
                continue
            self._make_victim(w, resp)
            synced.delete(w)
        if self.victims:
            self.wake()

    def _make_victim(self, w: Watcher, resp: WatchResp) -> None:
        w.victim = True
        w.pending = resp
        self.victims.add(w)
        self.victims_total += 1
        w.stream.blocked(self)

    # -- catching up ------------------------------------------------------------------------

    def sync_watchers(self) -> int:
        """One bounded catch-up step for up to max_watchers_per_sync unsynced watchers (etcd's
        syncWatchers). Returns how many watchers made progress."""
        if not self.unsynced.watchers:
            return 0
        kv = self.kv
        cur, compact = kv.rev, kv.compact_rev
        chosen = WatcherGroup()
        low = None
        progressed = 0
        for w in list(self.unsynced.watchers):
            if len(chosen) >= self.max_watchers_per_sync:
                break
            if w.min_rev < compact:
                if w.stream.try_send(WatchResp(w.id, [], 0, compact)):
                    w.compacted = True
                    self.unsynced.delete(w)
                    progressed += 1
                else:
                    w.stream.blocked(self)  # retried when the stream drains
                continue
            chosen.add(w)
            if low is None or w.min_rev < low:
                low = w.min_rev
        if low is None:
            return progressed
        evs, hi = self.read_history(low, min(cur, low + self.batch_revs - 1))
        wb = chosen.batch(evs)
        for w in chosen.watchers:
            if w.min_rev <= hi:
                w.min_rev = hi + 1
            evs = wb.get(w)
            if evs:
                resp = WatchResp(w.id, evs, hi)
                if w.send(resp):
                    self.events_sent += len(evs)
                else:
                    self.unsynced.delete(w)
                    self._make_victim(w, resp)
                    continue
            progressed += 1
            if w.min_rev > cur:
                self.unsynced.delete(w)
                self.synced.add(w)
        return progressed

    def read_history(self, low: int, high: int) -> tuple[list, int]:
        """Events of revisions low..high from the backend's key bucket, in revision order, stopping
        at a revision boundary once batch_bytes are read. Returns (events, last revision covered).
        (KVStore.history has no byte bound, so this walks the bucket itself, the same way.)"""
        self.history_reads += 1
        be = self.kv.be
        parse = mvccpb.KeyValue.FromString
        Event, PUT, DELETE = mvccpb.Event, mvccpb.Event.PUT, mvccpb.Event.DELETE
        to_rev, shift, limit = rv.bytes_to_rev, rv.SUB_BITS, self.batch_bytes
        out, size, last = [], 0, low - 1
        for k, v in be.range(bk.KEY, rv.main_to_bytes(max(low, 0)), rv.main_to_bytes(high + 1)):
            r = to_rev(k) >> shift
            if r != last:
                if size >= limit:
                    return out, last
                last = r
            m = parse(v)
            size += len(v)
            if len(k) == rv.MARKED_REV_BYTES_LEN:  # a tombstone: its kv holds only the key
                m.mod_revision = r
                out.append(Event(type=DELETE, kv=m))
            else:
                out.append(Event(type=PUT, kv=m))
        return out, high

    def move_victims(self) -> int:
        """Retry the pending response of each victim (etcd's moveVictims); a victim that sent
        it rejoins unsynced, or synced if nothing happened since. Returns how many moved."""
        moved = 0
        cur = self.kv.rev
        for w in list(self.victims):
            resp = w.pending
            if resp is not None:
                # The watcher has observed the store up to, not including, min_rev.
                resp.revision = w.min_rev - 1
                if not w.stream.try_send(resp):
                    w.stream.blocked(self)
                    continue
                self.events_sent += len(resp.events)
            w.pending = None
            w.victim = False
            self.victims.discard(w)
            moved += 1
            if w.min_rev <= cur:
                self.unsynced.add(w)
            else:
                self.synced.add(w)
        return moved

    # -- the background task ----------------------------------------------------------------

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def start(self) -> None:
        """Start the catch-up task (inside the running loop)."""
        if self._task is None:
            self._wake = asyncio.Event()
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name="watch-sync")

    async def stop(self) -> None:
        t, self._task = self._task, None
        if t is not None:
            # The flag as well as the cancel: Python 3.11's wait_for loses a cancellation that
            # arrives as the wake event fires.
            self._stopping = True
            self._wake.set()
            t.cancel()
            try:
                await t
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        wake = self._wake
        while not self._stopping:
            wake.clear()
            progressed = 0
            if self.victims:
                progressed += self.move_victims()
            if self.unsynced.watchers:
                progressed += self.sync_watchers()
            if progressed and (self.unsynced.watchers or self.victims):
                await asyncio.sleep(0)  # let the apply loop and the streams run between steps
                continue
            timeout = self.sync_interval if (self.unsynced.watchers or self.victims) else None
            if timeout is None:
                await wake.wait()
            else:
                try:
                    await asyncio.wait_for(wake.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
