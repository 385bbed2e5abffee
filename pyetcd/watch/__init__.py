"""Watch: the watchable store over MVCC, watcher groups, per-client watch streams.

    store = WatchableStore(server.kv); server.event_listeners.append(store.notify); store.start()
"""
from .group import Watcher, WatcherGroup, WatchResp  # noqa: F401
from .interval import IntervalIndex  # noqa: F401
from .store import WatchableStore  # noqa: F401
from .stream import Control, WatchCreateError, WatchStream  # noqa: F401
