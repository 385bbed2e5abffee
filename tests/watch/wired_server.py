"""Start pyetcd with the Watch service wired in, for as long as pyetcd.server.main still serves
the UNIMPLEMENTED stub (tests only; the server owner wires the real thing, see conftest.py)."""
from pyetcd.api import pending
from pyetcd.api.watch import WatchService
from pyetcd.watch import WatchableStore


def _wired(server):
    store = WatchableStore(server.kv)
    server.event_listeners.append(store.notify)
    store.start()
    return WatchService(server, store)


if __name__ == "__main__":
    pending.WatchService = _wired
    from pyetcd.server.main import main

    main()
