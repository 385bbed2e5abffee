"""One client's watch stream (etcd server/mvcc/watcher.go watchStream): its watch ids, and the
bounded queue of responses between the watchable store and the gRPC writer.

The queue holds at most ``capacity`` store responses (events, progress, compaction; etcd's
chanBufLen of 128). When it is full, ``try_send`` refuses and the store parks the watcher as a
victim; once the writer has drained it to half, the store is woken to retry. Control responses
(created, canceled, stream-wide progress) always go in, in order with the rest, so a watcher's
created response precedes its events and nothing is reordered.
"""
from __future__ import annotations

import asyncio
from collections import deque

from .group import Watcher

CHAN_BUF_LEN = 128

ERR_EMPTY_WATCHER_RANGE = "mvcc: watcher range is empty"
ERR_WATCHER_DUPLICATE_ID = "mvcc: duplicate watch ID provided on the WatchStream"
AUTO_WATCH_ID = 0


class WatchCreateError(Exception):
    """A create request etcd answers with created+canceled and this reason."""


class WatchStream:
    def __init__(self, store, capacity: int = CHAN_BUF_LEN):
        self.store = store
        self.capacity = capacity
        self.watchers: dict[int, Watcher] = {}
        self.next_id = 0
        self._q: deque = deque()
        self._data = 0            # store responses in _q (counted against capacity)
        self._ready = asyncio.Event()
        self._blocked_store = None  # the store to wake once drained
        self.closed = False

    def __len__(self) -> int:
        return len(self._q)

    # -- watchers ---------------------------------------------------------------------------

    def watch(self, wid: int, key: bytes, end: bytes | None, start_rev: int,
              no_put: bool = False, no_delete: bool = False) -> int:
        """Create a watcher (etcd watchStream.Watch); ``end`` in the index convention (None one
        key, b"" every key >= key). Returns its id; raises WatchCreateError."""
        if end and key >= end:
            raise WatchCreateError(ERR_EMPTY_WATCHER_RANGE)
        if self.closed:
            raise WatchCreateError(ERR_EMPTY_WATCHER_RANGE)  # what etcd answers on a closed stream
        if wid == AUTO_WATCH_ID:
            while self.next_id in self.watchers:
                self.next_id += 1
            wid = self.next_id
            self.next_id += 1
        elif wid in self.watchers:
            raise WatchCreateError(ERR_WATCHER_DUPLICATE_ID)
        self.watchers[wid] = self.store.watch(wid, key, end, start_rev, self, no_put, no_delete)
        return wid

    def cancel(self, wid: int) -> bool:
        w = self.watchers.pop(wid, None)
        if w is None:
            return False
        self.store.cancel(w)
        return True

    def close(self) -> None:
        """Cancel every watcher; later sends are dropped."""
        self.closed = True
        for w in self.watchers.values():
            self.store.cancel(w)
        self.watchers.clear()
        self._q.clear()
        self._data = 0
        self._ready.set()

    # -- the queue --------------------------------------------------------------------------

    def try_send(self, resp) -> bool:
        """Offer a store response; False when full (the store then parks the watcher)."""
        if self.closed:
            return True
        if self._data >= self.capacity:
            return False
        self._data += 1
        self._q.append(resp)
        self._ready.set()
        return True

    def blocked(self, store) -> None:
        """The store has a response waiting for room here: wake it once drained."""
        self._blocked_store = store

    def put_control(self, msg) -> None:
        if self.closed:
            return
        self._q.append(Control(msg))
        self._ready.set()

    def get_nowait(self):
        """The next queued item, or None."""
        if not self._q:
            return None
        item = self._q.popleft()
        if not isinstance(item, _CONTROL_TYPES):
            self._data -= 1
            st = self._blocked_store
            if st is not None and self._data <= self.capacity // 2:
                self._blocked_store = None
                st.wake()
        return item

    async def get(self):
        """Wait for the next item; None once closed."""
        while not self._q:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self.get_nowait()


class Control:
    """A response that bypasses the capacity limit (created, canceled, stream progress)."""

    __slots__ = ("msg",)

    def __init__(self, msg):
        self.msg = msg


_CONTROL_TYPES = (Control,)
