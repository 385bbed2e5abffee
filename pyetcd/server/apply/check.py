"""Request validation done before a request is proposed, as etcd's v3rpc layer does it.

A request that fails here changes nothing and never reaches the log. The rules and their order
follow etcd 3.5 (server/etcdserver/api/v3rpc/key.go), including its quirks: the duplicate-key
check treats range ends as "affine" strings where the empty string is +infinity, so a delete
with range_end "\\0" covers no put key.
"""
from __future__ import annotations

from pyetcd import errors
from pyetcd.pb import rpc

_SORT_TARGETS = set(rpc.RangeRequest.SortTarget.values())


def check_range(r) -> None:
    if not r.key:
        raise errors.ErrEmptyKey
    # etcd 3.5.1 does not check sort options: an unknown sort_order sorts nothing, and an unknown
    # sort_target makes it panic (the whole server stops). We keep the first and refuse the second
    # with the error later etcd releases send.
    if r.sort_target not in _SORT_TARGETS:
        raise errors.ErrInvalidSortOption


def check_put(r) -> None:
    if not r.key:
        raise errors.ErrEmptyKey
    if r.ignore_value and r.value:
        raise errors.ErrValueProvided
    if r.ignore_lease and r.lease != 0:
        raise errors.ErrLeaseProvided


def check_delete(r) -> None:
    if not r.key:
        raise errors.ErrEmptyKey


def check_txn(r, max_txn_ops: int) -> None:
    _check_txn(r, max_txn_ops)
    _check_intervals(r.success)
    _check_intervals(r.failure)


def _check_txn(r, max_txn_ops: int) -> None:
    opc = max(len(r.compare), len(r.success), len(r.failure))
    if opc > max_txn_ops:
        raise errors.ErrTooManyOps
    for c in r.compare:
        if not c.key:
            raise errors.ErrEmptyKey
    for ops in (r.success, r.failure):
        for op in ops:
            _check_op(op, max_txn_ops - opc)


def _check_op(op, max_txn_ops: int) -> None:
    which = op.WhichOneof("request")
    if which == "request_range":
        check_range(op.request_range)
    elif which == "request_put":
        check_put(op.request_put)
    elif which == "request_delete_range":
        check_delete(op.request_delete_range)
    elif which == "request_txn":
        _check_txn(op.request_txn, max_txn_ops)
    else:
        raise errors.ErrKeyNotFound  # empty op: etcd answers "key not found"


# Affine string intervals: b"" as an interval end means +infinity.
def _lt_end(a: bytes, end: bytes) -> bool:
    """a < end, where end == b'' is +infinity."""
    return end == b"" or a < end


def _point_hits(dels: list, k: bytes) -> bool:
    pend = k + b"\x00"
    for begin, end in dels:
        # [begin, end) intersects [k, k\0): begin < k\0 and k < end
        if begin < pend and _lt_end(k, end):
            return True
    return False


def _check_intervals(reqs) -> tuple[set, list]:
    dels: list[tuple[bytes, bytes]] = []
    for op in reqs:
        if op.WhichOneof("request") == "request_delete_range":
            d = op.request_delete_range
            dels.append((d.key, d.range_end) if d.range_end else (d.key, d.key + b"\x00"))
    puts: set[bytes] = set()
    for op in reqs:
        if op.WhichOneof("request") != "request_txn":
            continue
        t = op.request_txn
        puts_then, dels_then = _check_intervals(t.success)
        puts_else, dels_else = _check_intervals(t.failure)
        for k in puts_then:
            if k in puts or _point_hits(dels, k):
                raise errors.ErrDuplicateKey
            puts.add(k)
        for k in puts_else:
            if k in puts and k not in puts_then:
                raise errors.ErrDuplicateKey
            if _point_hits(dels, k):
                raise errors.ErrDuplicateKey
            puts.add(k)
        dels.extend(dels_then)
        dels.extend(dels_else)
    for op in reqs:
        if op.WhichOneof("request") != "request_put":
            continue
        k = op.request_put.key
        if k in puts or _point_hits(dels, k):
            raise errors.ErrDuplicateKey
        puts.add(k)
    return puts, dels


def is_txn_readonly(r) -> bool:
    for ops in (r.success, r.failure):
        for op in ops:
            w = op.WhichOneof("request")
            if w in ("request_put", "request_delete_range"):
                return False
            if w == "request_txn" and not is_txn_readonly(op.request_txn):
                return False
    return True


def is_txn_serializable(r) -> bool:
    """etcd: a read-only txn is served without ReadIndex only if every range is serializable."""
    for ops in (r.success, r.failure):
        for op in ops:
            w = op.WhichOneof("request")
            if w == "request_range" and not op.request_range.serializable:
                return False
            if w == "request_txn" and not is_txn_serializable(op.request_txn):
                return False
    return True
