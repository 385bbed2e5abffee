"""Key permissions of a user, merged across its roles, as etcd 3.5's range permission cache.

etcd keeps, per user, two interval trees (read and write) of "affine" byte intervals: an empty
end means +infinity. A permission whose range_end is empty covers its key alone (the point
[key, key+"\\0")); range_end "\\0" means every key from `key` on. A request for a single key is
allowed when some interval holds it; a request for a range is allowed only when the union of
the intervals it overlaps covers it without a gap (adt.IntervalTree.Contains).
"""
from __future__ import annotations

from pyetcd.pb import auth as authpb

READ, WRITE, READWRITE = authpb.Permission.READ, authpb.Permission.WRITE, authpb.Permission.READWRITE

INF = None  # an interval end of None is +infinity


def _lt(a: bytes, b) -> bool:
    """a < b where b may be +infinity."""
    return b is INF or a < b


def _end_ge(a, b) -> bool:
    """a >= b for interval ends (None = +infinity)."""
    if a is INF:
        return True
    if b is INF:
        return False
    return a >= b


def perm_interval(perm) -> tuple[bytes, bytes | None]:
    if len(perm.range_end) == 0:
        return perm.key, perm.key + b"\x00"
    end = None if perm.range_end == b"\x00" else perm.range_end
    return perm.key, end


class UnifiedPerms:
    """A user's read and write intervals, each sorted by begin."""

    def __init__(self, roles) -> None:
        self.read: list = []
        self.write: list = []
        for role in roles:
            for perm in role.keyPermission:
                ivl = perm_interval(perm)
                if perm.permType in (READ, READWRITE):
                    self.read.append(ivl)
                if perm.permType in (WRITE, READWRITE):
                    self.write.append(ivl)
        # etcd's tree visits in begin order; ties keep no particular order but do not matter here
        self.read.sort(key=lambda i: i[0])
        self.write.sort(key=lambda i: i[0])

    def permitted(self, key: bytes, range_end: bytes, perm_type: int) -> bool:
        ivls = self.read if perm_type == READ else self.write
        if not range_end:
            return any(b <= key and _lt(key, e) for b, e in ivls)
        end = None if range_end == b"\x00" else range_end
        return _contains(ivls, key, end)


def _overlaps(b1: bytes, e1, b2: bytes, e2) -> bool:
    return _lt(b1, e2) and _lt(b2, e1)


def _contains(ivls, begin: bytes, end) -> bool:
    """adt.IntervalTree.Contains: the intervals overlapping [begin, end) join without a gap
    and reach from at or before `begin` to at or after `end`."""
    min_begin = max_end = None
    seen = False
    for b, e in ivls:
        if not _overlaps(b, e, begin, end):
            continue
        if not seen:
            seen, min_begin, max_end = True, b, e
            continue
        if max_end is not INF and max_end < b:
            return False
        if not _end_ge(max_end, e):
            max_end = e
    return seen and _end_ge(max_end, end) and min_begin <= begin
