"""A fake event source for store tests: a real KVStore whose writes are fed to the watchable
store by hand, as the server's apply loop does (notify after each write txn)."""
from __future__ import annotations

from pyetcd.storage.backend import Backend
from pyetcd.storage.mvcc import KVStore
from pyetcd.watch import Control, WatchableStore, WatchStream


class Source:
    def __init__(self, path: str, **store_kw):
        self.kv = KVStore(Backend(path))
        self.store = WatchableStore(self.kv, **store_kw)
        self.history = []  # every event, in order

    def close(self):
        self.kv.be.close()

    def _applied(self, evs):
        self.history.extend(evs)
        self.store.notify(evs)
        return evs

    def put(self, key: bytes, value: bytes = b"v"):
        _, evs = self.kv.put(key, value)
        return self._applied(evs)

    def delete(self, key: bytes, end: bytes = b""):
        _, evs = self.kv.delete_range(key, end)
        return self._applied(evs) if evs else evs

    def txn(self, puts=(), deletes=()):
        tw = self.kv.write()
        try:
            for k in deletes:
                tw.delete_range(k)
            for k, v in puts:
                tw.put(k, v)
        finally:
            evs = tw.end()
        return self._applied(evs) if evs else evs


def drain(ws: WatchStream, limit: int | None = None) -> list:
    """Pop up to ``limit`` items (all if None); control messages are returned as-is."""
    out = []
    while limit is None or len(out) < limit:
        it = ws.get_nowait()
        if it is None:
            break
        out.append(it.msg if isinstance(it, Control) else it)
    return out


def settle(store, streams, rounds: int = 10_000) -> None:
    """Drain every stream and run catch-up steps until nothing is unsynced or parked."""
    for _ in range(rounds):
        for ws, sink in streams:
            sink.extend(drain(ws))
        if not store.victims and not store.unsynced.watchers:
            for ws, sink in streams:
                sink.extend(drain(ws))
            return
        store.move_victims()
        store.sync_watchers()
    raise AssertionError(f"store did not settle: {store.counts()}")


def ev_tuple(e):
    return (e.type, e.kv.key, e.kv.mod_revision, e.kv.value, e.kv.version, e.kv.create_revision)
