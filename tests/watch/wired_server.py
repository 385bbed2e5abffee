"""Start pyetcd with the Watch service wired in, for as long as pyetcd.server.main still serves
the UNIMPLEMENTED stub (tests only; the server owner wires the real thing, see conftest.py).

The wiring is what the server needs: a WatchableStore over server.kv, its notify() among the
event listeners, the catch-up task started in the loop, the service registered, and after a
snapshot install (which builds a new KVStore) store.restore(server.kv)."""
from pyetcd.api import pending
from pyetcd.api.watch import WatchService
from pyetcd.watch import WatchableStore


def _wired(server):
    store = WatchableStore(server.kv)
    server.event_listeners.append(store.notify)
    store.start()
    node = getattr(server, "raft", None)
    install = getattr(node, "install_snapshot", None)
    if install is not None:
        async def install_and_restore(*args, **kw):
            await install(*args, **kw)
            store.restore(server.kv)
        node.install_snapshot = install_and_restore
    return WatchService(server, store)


if __name__ == "__main__":
    pending.WatchService = _wired
    from pyetcd.server.main import main

    main()
