"""Watchers and the groups that hold them (etcd server/mvcc/watcher_group.go).

A watcher watches one key (``end is None``), a range ``[key, end)``, or every key >= key
(``end == b""``, the key index's convention). Single-key watchers are found by a dict lookup,
range watchers through an IntervalIndex, so matching an event never scans all watchers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .interval import IntervalIndex


@dataclass(slots=True)
class WatchResp:
    """What the store hands a stream: etcd's mvcc.WatchResponse.

    ``revision`` is the store revision the response reflects (the header revision); a response
    with ``compact_revision`` set tells the client its watcher was compacted away.
    """
    watch_id: int
    events: list = field(default_factory=list)
    revision: int = 0
    compact_revision: int = 0


class Watcher:
    """One watcher. Invariant: it has been sent every matching event below ``min_rev`` (or, as a
    victim, holds them in ``pending``) and none at or above it."""

    __slots__ = ("id", "key", "end", "min_rev", "stream", "no_put", "no_delete", "victim",
                 "pending", "compacted", "canceled")

    def __init__(self, wid: int, key: bytes, end: bytes | None, min_rev: int, stream,
                 no_put: bool = False, no_delete: bool = False):
        self.id = wid
        self.key = key
        self.end = end
        self.min_rev = min_rev
        self.stream = stream
        self.no_put = no_put
        self.no_delete = no_delete
        self.victim = False
        self.pending: WatchResp | None = None   # the response a victim could not send
        self.compacted = False
        self.canceled = False

    def contains(self, key: bytes) -> bool:
        end = self.end
        if end is None:
            return key == self.key
        return self.key <= key and (not end or key < end)

    def send(self, resp: WatchResp) -> bool:
        """Filter and offer a response to the stream (etcd's watcher.send). A response whose
        events are all filtered out counts as sent; False means the stream is full."""
        evs = resp.events
        if evs and (self.no_put or self.no_delete):
            if self.no_put and self.no_delete:
                return True
            drop = 0 if self.no_put else 1  # mvccpb.Event.PUT == 0, DELETE == 1
            resp.events = evs = [e for e in evs if e.type != drop]
            if not evs:
                return True
        return self.stream.try_send(resp)

    def __repr__(self) -> str:
        return f"Watcher(id={self.id}, key={self.key!r}, end={self.end!r}, min_rev={self.min_rev})"


class WatcherGroup:
    """A set of watchers indexed by what they watch."""

    __slots__ = ("keys", "ranges", "watchers")

    def __init__(self):
        self.keys: dict[bytes, set[Watcher]] = {}
        self.ranges = IntervalIndex()
        self.watchers: set[Watcher] = set()

    def __len__(self) -> int:
        return len(self.watchers)

    def __contains__(self, w: Watcher) -> bool:
        return w in self.watchers

    def add(self, w: Watcher) -> None:
        if w in self.watchers:
            return
        self.watchers.add(w)
        if w.end is None:
            s = self.keys.get(w.key)
            if s is None:
                self.keys[w.key] = {w}
            else:
                s.add(w)
            return
        s = self.ranges.get(w.key, w.end)
        if s is None:
            self.ranges.insert(w.key, w.end, {w})
        else:
            s.add(w)

    def delete(self, w: Watcher) -> bool:
        if w not in self.watchers:
            return False
        self.watchers.discard(w)
        if w.end is None:
            s = self.keys[w.key]
            s.discard(w)
            if not s:
                del self.keys[w.key]
            return True
        s = self.ranges.get(w.key, w.end)
        s.discard(w)
        if not s:
            self.ranges.delete(w.key, w.end)
        return True

    def match(self, key: bytes) -> list:
        """The sets of watchers whose key or range contains ``key``."""
        out = []
        s = self.keys.get(key)
        if s:
            out.append(s)
        if len(self.ranges):
            out.extend(self.ranges.stab(key))
        return out

    def batch(self, events: list) -> dict:
        """Map each watcher to the events it should see: matching key and mod_revision >= its
        min_rev (etcd's newWatcherBatch). Events keep their order."""
        out: dict[Watcher, list] = {}
        keys = self.keys
        ranges = self.ranges if len(self.ranges) else None
        for ev in events:
            k = ev.kv.key
            rev = ev.kv.mod_revision
            s = keys.get(k)
            sets = ranges.stab(k) if ranges is not None else ()
            if s:
                for w in s:
                    if rev >= w.min_rev:
                        lst = out.get(w)
                        if lst is None:
                            out[w] = [ev]
                        else:
                            lst.append(ev)
            for s in sets:
                for w in s:
                    if rev >= w.min_rev:
                        lst = out.get(w)
                        if lst is None:
                            out[w] = [ev]
                        else:
                            lst.append(ev)
        return out
