"""An interval index over byte keys: which ranges [start, end) contain a key (a stabbing query).

etcd keeps range watchers in an augmented interval tree (pkg/adt) so that matching an event
costs O(log n + matches), not a scan of every range watcher. This is the same idea as a treap
(a binary search tree ordered by (start, end), balanced by random heap priorities) whose every
node also carries the largest end in its subtree, so a query skips any subtree that ends at or
before the key.

End convention (the key index's, see storage/mvcc/kvstore.index_end): ``b""`` means "no upper
bound" (etcd's from-key watch). A real range end is never empty, so b"" is free to mean infinity.
Each distinct interval is stored once, with a payload (the watcher group keeps a set of
watchers sharing that interval there, as etcd's watcherSetByKey does).
"""
from __future__ import annotations

import random


def _end_key(end: bytes) -> tuple:
    """Sort key of an end: b"" (infinity) after every finite end."""
    return (1, b"") if not end else (0, end)


def _max_end(a: bytes, b: bytes) -> bytes:
    if not a or not b:
        return b""
    return a if a > b else b


class _Node:
    __slots__ = ("start", "end", "sort", "prio", "value", "left", "right", "max_end")

    def __init__(self, start: bytes, end: bytes, value, prio: float):
        self.start = start
        self.end = end
        self.sort = (start, _end_key(end))
        self.prio = prio
        self.value = value
        self.left = None
        self.right = None
        self.max_end = end

    def fix(self) -> None:
        m = self.end
        if m:
            l, r = self.left, self.right
            if l is not None:
                m = _max_end(m, l.max_end)
            if m and r is not None:
                m = _max_end(m, r.max_end)
        self.max_end = m


def _split(t, sort):
    """Split t into (nodes with sort key < sort, nodes with sort key >= sort)."""
    if t is None:
        return None, None
    if t.sort < sort:
        l, r = _split(t.right, sort)
        t.right = l
        t.fix()
        return t, r
    l, r = _split(t.left, sort)
    t.left = r
    t.fix()
    return l, t


def _merge(a, b):
    """Merge two treaps, every key of a below every key of b."""
    if a is None:
        return b
    if b is None:
        return a
    if a.prio > b.prio:
        a.right = _merge(a.right, b)
        a.fix()
        return a
    b.left = _merge(a, b.left)
    b.fix()
    return b


class IntervalIndex:
    """Map distinct intervals [start, end) to a payload; find the intervals containing a key."""

    def __init__(self, seed: int | None = None):
        self._root = None
        self._nodes: dict[tuple[bytes, bytes], _Node] = {}
        self._rand = random.Random(seed).random

    def __len__(self) -> int:
        return len(self._nodes)

    def get(self, start: bytes, end: bytes, default=None):
        n = self._nodes.get((start, end))
        return default if n is None else n.value

    def insert(self, start: bytes, end: bytes, value) -> None:
        """Add [start, end) with a payload; replaces the payload if the interval is present."""
        if end and end <= start:
            raise ValueError("empty interval")
        n = self._nodes.get((start, end))
        if n is not None:
            n.value = value
            return
        n = _Node(start, end, value, self._rand())
        self._nodes[(start, end)] = n
        l, r = _split(self._root, n.sort)
        self._root = _merge(_merge(l, n), r)

    def delete(self, start: bytes, end: bytes) -> bool:
        """Remove [start, end); returns whether it was present."""
        n = self._nodes.pop((start, end), None)
        if n is None:
            return False
        self._root = self._delete(self._root, n.sort)
        return True

    def _delete(self, t, sort):
        if t is None:  # pragma: no cover - the dict says it is present
            return None
        if t.sort == sort:
            return _merge(t.left, t.right)
        if sort < t.sort:
            t.left = self._delete(t.left, sort)
        else:
            t.right = self._delete(t.right, sort)
        t.fix()
        return t

    def stab(self, key: bytes) -> list:
        """Payloads of every interval with start <= key < end (end b"" = unbounded)."""
        out = []
        stack = [self._root] if self._root is not None else []
        while stack:
            t = stack.pop()
            me = t.max_end
            if me and me <= key:
                continue  # everything below ends at or before key
            if t.left is not None:
                stack.append(t.left)
            if t.start <= key:
                e = t.end
                if not e or e > key:
                    out.append(t.value)
                if t.right is not None:
                    stack.append(t.right)
        return out

    def items(self):
        """(start, end, payload) in (start, end) order."""
        out = []
        stack, t = [], self._root
        while stack or t is not None:
            while t is not None:
                stack.append(t)
                t = t.left
            t = stack.pop()
            out.append((t.start, t.end, t.value))
            t = t.right
        return out

    def check(self) -> None:
        """Verify the ordering, heap and max-end invariants (for tests)."""
        def walk(t, lo, hi):
            if t is None:
                return None
            assert lo is None or lo < t.sort, "order"
            assert hi is None or t.sort < hi, "order"
            for c in (t.left, t.right):
                assert c is None or c.prio <= t.prio, "heap"
            walk(t.left, lo, t.sort)
            walk(t.right, t.sort, hi)
            m = t.end
            for c in (t.left, t.right):
                if c is not None:
                    m = _max_end(m, c.max_end)
            assert m == t.max_end, "max_end"
        walk(self._root, None, None)
        assert len(self.items()) == len(self._nodes)
