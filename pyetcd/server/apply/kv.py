"""KV requests applied to the MVCC store, with etcd 3.5's semantics and response shapes.

Responses mirror etcd's applier exactly, down to the headers of responses nested in a Txn:
those carry only a revision (nested Txn responses carry an empty header), while the top-level
header is completed (cluster id, member id, raft term) by the API layer.

Txn: every compare on every reachable branch is evaluated first, against the state before the
txn (etcd's compareToPath); then the ops of the chosen branches are checked (lease exists,
ignore_value/ignore_lease key exists, range revisions valid) and only then applied, so a failed
check changes nothing.
"""
from __future__ import annotations

from pyetcd import errors
from pyetcd.pb import kv as mvccpb
from pyetcd.pb import rpc

from .gosort import go_sort

_RR = rpc.RangeRequest
_CMP = rpc.Compare

_SORT_KEYS = {
    _RR.KEY: lambda kv: kv.key,
    _RR.VERSION: lambda kv: kv.version,
    _RR.CREATE: lambda kv: kv.create_revision,
    _RR.MOD: lambda kv: kv.mod_revision,
    _RR.VALUE: lambda kv: kv.value,
}


class _WriteView:
    """A write txn plus whether it has changed anything yet (etcd reads at rev+1 after a change)."""

    __slots__ = ("tw", "base_rev", "changed")

    def __init__(self, tw, base_rev: int):
        self.tw = tw
        self.base_rev = base_rev
        self.changed = False

    @property
    def rev(self) -> int:
        return self.base_rev + 1 if self.changed else self.base_rev


class KVApplier:
    def __init__(self, store, lease_exists=lambda lease_id: False, on_put=None, on_delete=None):
        """on_put(prev_kv, key, lease) / on_delete(prev_kvs) follow every write (lease attachment)."""
        self.store = store
        self.lease_exists = lease_exists
        self.on_put = on_put or (lambda prev, key, lease: None)
        self.on_delete = on_delete or (lambda prevs: None)

    # ---- Range ---------------------------------------------------------------------------
    def range(self, r, view: _WriteView | None = None):
        resp = rpc.RangeResponse()
        sorting = (r.sort_order != _RR.NONE or r.min_mod_revision or r.max_mod_revision
                   or r.min_create_revision or r.max_create_revision)
        limit = 0 if sorting else r.limit
        if limit > 0:
            limit += 1  # one extra to learn whether there are more
        if view is None:
            cur = self.store.rev
            reader = self.store
        else:
            cur = view.rev
            reader = view.tw
        if r.revision > cur:
            raise errors.ErrFutureRev
        rr = reader.range(r.key, r.range_end, rev=r.revision, limit=limit)
        kvs = [] if r.count_only else list(rr.kvs)
        if r.max_mod_revision:
            kvs = [kv for kv in kvs if not kv.mod_revision > r.max_mod_revision]
        if r.min_mod_revision:
            kvs = [kv for kv in kvs if not kv.mod_revision < r.min_mod_revision]
        if r.max_create_revision:
            kvs = [kv for kv in kvs if not kv.create_revision > r.max_create_revision]
        if r.min_create_revision:
            kvs = [kv for kv in kvs if not kv.create_revision < r.min_create_revision]
        order = r.sort_order
        if r.sort_target != _RR.KEY and order == _RR.NONE:
            order = _RR.ASCEND  # mvcc returns key order; other targets sort ascending by default
        if order != _RR.NONE:
            f = _SORT_KEYS[r.sort_target]
            if order == _RR.ASCEND:
                go_sort(kvs, lambda a, b: f(a) < f(b))
            else:
                go_sort(kvs, lambda a, b: f(b) < f(a))
        if r.limit > 0 and len(kvs) > r.limit:
            kvs = kvs[:r.limit]
            resp.more = True
        resp.header.revision = cur
        resp.count = rr.count
        if r.keys_only:
            for kv in kvs:
                kv.ClearField("value")
        resp.kvs.extend(kvs)
        return resp

    # ---- Put / DeleteRange -----------------------------------------------------------
    def put(self, p):
        """A top-level Put. Returns (PutResponse, events)."""
        if p.lease != 0 and not self.lease_exists(p.lease):
            raise errors.ErrLeaseNotFound
        return self._in_own_txn(self._put, p)

    def delete_range(self, d):
        """A top-level DeleteRange. Returns (DeleteRangeResponse, events)."""
        return self._in_own_txn(self._delete_range, d)

    def _in_own_txn(self, op, req):
        view = _WriteView(self.store.write(), self.store.rev)
        try:
            resp = op(req, view)
        finally:
            events = view.tw.end()
        return resp, events

    def _put(self, p, view: _WriteView):
        resp = rpc.PutResponse()
        lease = p.lease
        prev = None
        if p.ignore_value or p.ignore_lease or p.prev_kv:
            rr = view.tw.range(p.key, b"", rev=0, limit=0)
            prev = rr.kvs[0] if rr.kvs else None
        if (p.ignore_value or p.ignore_lease) and prev is None:
            raise errors.ErrKeyNotFound
        value = prev.value if p.ignore_value else p.value
        if p.ignore_lease:
            lease = prev.lease
        if p.prev_kv and prev is not None:
            resp.prev_kv.CopyFrom(prev)
        self.on_put(view.tw.put(p.key, value, lease), p.key, lease)
        view.changed = True
        resp.header.revision = view.base_rev + 1
        return resp

    def _delete_range(self, d, view: _WriteView):
        resp = rpc.DeleteRangeResponse()
        prevs = view.tw.delete_range(d.key, d.range_end)
        self.on_delete(prevs)
        if d.prev_kv:
            resp.prev_kvs.extend(prevs)
        resp.deleted = len(prevs)
        if prevs:
            view.changed = True
        resp.header.revision = view.rev
        return resp

    # ---- Txn -----------------------------------------------------------------------------
    def txn(self, t, is_write: bool):
        """Apply a Txn. Returns (TxnResponse, events)."""
        path = self._compare_to_path(t)
        if is_write:
            self._check_requests(t, path, 0, self._check_put)
        self._check_requests(t, path, 0, self._check_range)
        resp = rpc.TxnResponse()
        if not is_write:
            self._apply_txn(t, path, 0, resp, None)
            resp.header.revision = self.store.rev
            return resp, []
        view = _WriteView(self.store.write(), self.store.rev)
        try:
            self._apply_txn(t, path, 0, resp, view)
        finally:
            events = view.tw.end()
        resp.header.revision = view.rev
        return resp, events

    def _compare_to_path(self, t) -> list[bool]:
        ok = all(self._apply_compare(c) for c in t.compare)
        path = [ok]
        for op in (t.success if ok else t.failure):
            if op.WhichOneof("request") == "request_txn":
                path.extend(self._compare_to_path(op.request_txn))
        return path

    def _apply_compare(self, c) -> bool:
        try:
            rr = self.store.range(c.key, c.range_end, rev=0, limit=0)
        except errors.EtcdError:
            return False
        if not rr.kvs:
            if c.target == _CMP.VALUE:
                return False  # a missing key has no value to compare, not even b""
            return _compare_kv(c, mvccpb.KeyValue())
        return all(_compare_kv(c, kv) for kv in rr.kvs)

    def _check_requests(self, t, path, pos: int, check) -> int:
        """Check the ops on the chosen branches; returns how many txns were consumed."""
        ops = t.success if path[pos] else t.failure
        consumed = 0
        for op in ops:
            if op.WhichOneof("request") == "request_txn":
                n = self._check_requests(op.request_txn, path, pos + 1 + consumed, check)
                consumed += n + 1
            else:
                check(op)
        return consumed

    def _check_put(self, op) -> None:
        if op.WhichOneof("request") != "request_put":
            return
        p = op.request_put
        if p.ignore_value or p.ignore_lease:
            rr = self.store.range(p.key, b"", rev=0, limit=0)
            if not rr.kvs:
                raise errors.ErrKeyNotFound
        if p.lease != 0 and not self.lease_exists(p.lease):
            raise errors.ErrLeaseNotFound

    def _check_range(self, op) -> None:
        if op.WhichOneof("request") != "request_range":
            return
        rev = op.request_range.revision
        if rev == 0:
            return
        if rev > self.store.rev:
            raise errors.ErrFutureRev
        if rev < self.store.compact_rev:
            raise errors.ErrCompacted

    def _apply_txn(self, t, path, pos: int, resp, view) -> int:
        ok = path[pos]
        resp.succeeded = ok
        consumed = 0
        for op in (t.success if ok else t.failure):
            w = op.WhichOneof("request")
            out = resp.responses.add()
            if w == "request_range":
                out.response_range.CopyFrom(self.range(op.request_range, view))
            elif w == "request_put":
                out.response_put.CopyFrom(self._put(op.request_put, view))
            elif w == "request_delete_range":
                out.response_delete_range.CopyFrom(self._delete_range(op.request_delete_range, view))
            elif w == "request_txn":
                sub = out.response_txn
                sub.header.SetInParent()  # etcd sends an empty header on nested txn responses
                n = self._apply_txn(op.request_txn, path, pos + 1 + consumed, sub, view)
                consumed += n + 1
        return consumed

    # ---- Compaction ----------------------------------------------------------------------
    def compaction(self, c):
        self.store.compact(c.revision)
        resp = rpc.CompactionResponse()
        resp.header.revision = self.store.rev
        return resp


def _compare_kv(c, kv) -> bool:
    t = c.target
    which = c.WhichOneof("target_union")
    if t == _CMP.VALUE:
        want = c.value if which == "value" else b""
        have = kv.value
        result = (have > want) - (have < want)
    else:
        if t == _CMP.CREATE:
            have, field = kv.create_revision, "create_revision"
        elif t == _CMP.MOD:
            have, field = kv.mod_revision, "mod_revision"
        elif t == _CMP.VERSION:
            have, field = kv.version, "version"
        elif t == _CMP.LEASE:
            have, field = kv.lease, "lease"
        else:
            return True
        want = getattr(c, field) if which == field else 0
        result = (have > want) - (have < want)
    r = c.result
    if r == _CMP.EQUAL:
        return result == 0
    if r == _CMP.NOT_EQUAL:
        return result != 0
    if r == _CMP.GREATER:
        return result > 0
    if r == _CMP.LESS:
        return result < 0
    return True
