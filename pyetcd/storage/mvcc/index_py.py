"""The in-memory key index in plain Python (etcd server/mvcc/key_index.go, index.go).

Each key maps to a KeyIndex: a list of generations. A generation is one life of the key, from
its creation (put on an absent key) to its tombstone (delete), and holds the revisions of every
change in that life in ascending order. The last generation is the open one; it is empty while
the key is deleted. Revisions are ints ``main << 24 | sub`` (see revision.py).

native/mvcc_index.pyx compiles the same logic; index.py picks whichever is available. This
module is the reference the native one is tested and benchmarked against.
"""
from __future__ import annotations

from bisect import bisect_right

from sortedcontainers import SortedList

from pyetcd.storage.mvcc.revision import SUB_BITS, SUB_MASK as _SUB_MASK


class Generation:
    """One life of a key. Invariant: ``ver`` counts the puts of this life, including those
    compacted away, so the version at revs[i] is ver - (len(revs) - 1 - i)."""

    __slots__ = ("ver", "created", "revs")

    def __init__(self, created: int = 0, ver: int = 0, revs: list | None = None):
        self.created = created
        self.ver = ver
        self.revs = revs if revs is not None else []

    def __repr__(self) -> str:
        return f"Generation(created={self.created}, ver={self.ver}, revs={self.revs})"


class KeyIndex:
    """The revisions of one key. Invariant: ``gens`` is never empty; every generation but the
    last is non-empty and ends with its tombstone revision."""

    __slots__ = ("key", "modified", "gens")

    def __init__(self, key: bytes):
        self.key = key
        self.modified = 0
        self.gens = [Generation()]

    def is_empty(self) -> bool:
        return len(self.gens) == 1 and not self.gens[0].revs

    def put(self, r: int) -> None:
        if r <= self.modified:
            raise ValueError(f"put with revision {r:#x} not above {self.modified:#x} on {self.key!r}")
        g = self.gens[-1]
        if not g.revs:
            g.created = r
        g.revs.append(r)
        g.ver += 1
        self.modified = r

    def restore(self, created: int, modified: int, ver: int) -> None:
        self.modified = modified
        self.gens = [Generation(created, ver, [modified])]

    def tombstone(self, r: int) -> bool:
        """Append the tombstone and open a new generation; False if the key is already deleted."""
        if not self.gens[-1].revs:
            return False
        self.put(r)
        self.gens.append(Generation())
        return True

    def _find_generation(self, at: int) -> Generation | None:
        gens = self.gens
        last = len(gens) - 1
        for cg in range(last, -1, -1):
            revs = gens[cg].revs
            if not revs:
                continue
            if cg != last and (revs[-1] >> SUB_BITS) <= at:
                return None  # deleted at `at`: in the gap after this generation's tombstone
            if (revs[0] >> SUB_BITS) <= at:
                return gens[cg]
        return None

    def get(self, at: int):
        """(modified rev, created rev, version) of the key at main revision ``at``, or None."""
        g = self.gens[-1]
        revs = g.revs
        if revs and (revs[-1] >> SUB_BITS) <= at:  # fast path: the live key at or after its last change
            return revs[-1], g.created, g.ver
        g = self._find_generation(at)
        if g is None:
            return None
        revs = g.revs
        n = bisect_right(revs, (at << SUB_BITS) | _SUB_MASK) - 1
        if n < 0:
            return None
        return revs[n], g.created, g.ver - (len(revs) - 1 - n)

    def _do_compact(self, at: int, available: set) -> tuple[int, int]:
        gens = self.gens
        gi = 0
        g = gens[0]
        # the first generation that includes `at` or was created after it
        while gi < len(gens) - 1:
            if (g.revs[-1] >> SUB_BITS) > at:
                break
            gi += 1
            g = gens[gi]
        revs = g.revs
        ri = bisect_right(revs, (at << SUB_BITS) | _SUB_MASK) - 1
        if ri >= 0:
            available.add(revs[ri])
        return gi, ri

    def compact(self, at: int, available: set) -> None:
        """Drop revisions <= at except the latest one (and that one too if it is a tombstone)."""
        gi, ri = self._do_compact(at, available)
        g = self.gens[gi]
        if g.revs:
            if ri > 0:
                del g.revs[:ri]
            if len(g.revs) == 1 and gi != len(self.gens) - 1:
                available.discard(g.revs[0])
                gi += 1
        if gi:
            del self.gens[:gi]

    def keep(self, at: int, available: set) -> None:
        """Add to ``available`` the revisions compact(at) would keep."""
        if self.is_empty():
            return
        gi, ri = self._do_compact(at, available)
        g = self.gens[gi]
        if g.revs and ri == len(g.revs) - 1 and gi != len(self.gens) - 1:
            available.discard(g.revs[ri])

    def __repr__(self) -> str:
        return f"KeyIndex({self.key!r}, modified={self.modified:#x}, gens={self.gens})"


class TreeIndex:
    """All keys in byte order (a SortedList) with their KeyIndex (a dict).

    ``end`` follows etcd's index convention: None = the single key ``key``; b"" = every key
    >= key; otherwise [key, end).
    """

    def __init__(self):
        self._keys = SortedList()
        self._map: dict[bytes, KeyIndex] = {}

    def __len__(self) -> int:
        return len(self._map)

    def key_index(self, key: bytes) -> KeyIndex | None:
        return self._map.get(key)

    def generations(self, key: bytes) -> list | None:
        """[(created, ver, [revs])] of the key, oldest first (for tests and debugging)."""
        ki = self._map.get(key)
        if ki is None:
            return None
        return [(g.created, g.ver, list(g.revs)) for g in ki.gens]

    def keys(self) -> list:
        return list(self._keys)

    def get(self, key: bytes, at: int):
        ki = self._map.get(key)
        if ki is None:
            return None
        return ki.get(at)

    def put(self, key: bytes, r: int) -> None:
        ki = self._map.get(key)
        if ki is None:
            ki = KeyIndex(key)
            self._map[key] = ki
            self._keys.add(key)
        ki.put(r)

    def tombstone(self, key: bytes, r: int) -> bool:
        ki = self._map.get(key)
        if ki is None:
            return False
        return ki.tombstone(r)

    def restore_rev(self, key: bytes, r: int, tomb: bool, created: int, ver: int) -> None:
        """Replay one backend record in revision order (etcd's restoreIntoIndex)."""
        ki = self._map.get(key)
        if ki is not None:
            if tomb:
                ki.tombstone(r)
            else:
                ki.put(r)
        elif not tomb:
            ki = KeyIndex(key)
            ki.restore(created, r, ver)
            self._map[key] = ki
            self._keys.add(key)

    def _span(self, key: bytes, end: bytes):
        keys = self._keys
        i = keys.bisect_left(key)
        j = keys.bisect_left(end) if end else len(keys)
        if j <= i:
            return ()
        return keys.islice(i, j)

    def revisions(self, key: bytes, end: bytes | None, at: int, limit: int = 0):
        """(revisions of the keys live at ``at``, up to limit; number of such keys)."""
        if end is None:
            got = self.get(key, at)
            return ([got[0]], 1) if got is not None else ([], 0)
        m = self._map
        revs = []
        total = 0
        for k in self._span(key, end):
            got = m[k].get(at)
            if got is not None:
                if limit <= 0 or total < limit:
                    revs.append(got[0])
                total += 1
        return revs, total

    def count_revisions(self, key: bytes, end: bytes | None, at: int) -> int:
        if end is None:
            return 0 if self.get(key, at) is None else 1
        m = self._map
        n = 0
        for k in self._span(key, end):
            if m[k].get(at) is not None:
                n += 1
        return n

    def range(self, key: bytes, end: bytes | None, at: int):
        """(keys, revisions) live at ``at``."""
        if end is None:
            got = self.get(key, at)
            return ([key], [got[0]]) if got is not None else ([], [])
        m = self._map
        keys, revs = [], []
        for k in self._span(key, end):
            got = m[k].get(at)
            if got is not None:
                keys.append(k)
                revs.append(got[0])
        return keys, revs

    def compact(self, at: int) -> set:
        """Compact every key at ``at``; drop keys left empty. Returns the revisions kept."""
        available: set = set()
        dead = []
        for key, ki in self._map.items():
            ki.compact(at, available)
            if ki.is_empty():
                dead.append(key)
        for key in dead:
            del self._map[key]
            self._keys.remove(key)
        return available

    def keep(self, at: int) -> set:
        available: set = set()
        for ki in self._map.values():
            ki.keep(at, available)
        return available
