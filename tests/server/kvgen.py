"""Seeded random etcd KV workloads (requests only), for differential tests against real etcd.

The generator tracks the highest revision it may have produced and the last compaction it
asked for, so it can aim historical reads and compactions both at valid revisions and, on
purpose, at compacted and future ones.
"""
from __future__ import annotations

import random

from pyetcd.pb import rpc

RR = rpc.RangeRequest
CMP = rpc.Compare


class KVGen:
    def __init__(self, seed: int, keys: int = 24):
        self.rnd = random.Random(seed)
        self.keys = [b"k/%02d" % i for i in range(keys)] + [b"a", b"b/x", b"z\xff", b"\x00x"]
        self.max_rev = 1
        self.compacted = 0

    # ---- pieces ----
    def key(self) -> bytes:
        return self.rnd.choice(self.keys)

    def value(self) -> bytes:
        r = self.rnd.random()
        if r < 0.05:
            return b""
        return b"v%d" % self.rnd.randrange(6) if r < 0.6 else bytes(self.rnd.randrange(256) for _ in range(self.rnd.randrange(1, 12)))

    def range_end(self, key: bytes) -> bytes:
        r = self.rnd.random()
        if r < 0.45:
            return b""
        if r < 0.6:
            return b"\x00"
        if r < 0.8:  # prefix
            p = key[:self.rnd.randrange(0, len(key) + 1)] or key
            return p[:-1] + bytes([p[-1] + 1]) if p[-1] < 0xFF else b"\x00"
        return self.key()

    def revision(self) -> int:
        r = self.rnd.random()
        if r < 0.6:
            return 0
        if r < 0.7 and self.compacted > 1:
            return self.rnd.randrange(1, self.compacted)       # compacted
        if r < 0.75:
            return self.max_rev + self.rnd.randrange(1, 5)      # future (maybe)
        return self.rnd.randrange(max(1, self.compacted), self.max_rev + 1)

    def range_req(self) -> rpc.RangeRequest:
        k = self.key()
        if self.rnd.random() < 0.1:
            k = b"\x00"
        r = RR(key=k, range_end=self.range_end(k), revision=self.revision())
        rnd = self.rnd
        if rnd.random() < 0.3:
            r.limit = rnd.randrange(0, 6)
        if rnd.random() < 0.35:
            r.sort_order = rnd.choice([RR.NONE, RR.ASCEND, RR.DESCEND])
            r.sort_target = rnd.choice([RR.KEY, RR.VERSION, RR.CREATE, RR.MOD, RR.VALUE])
        r.serializable = rnd.random() < 0.3
        r.keys_only = rnd.random() < 0.15
        r.count_only = rnd.random() < 0.1
        if rnd.random() < 0.15:
            lo = rnd.randrange(0, self.max_rev + 2)
            setattr(r, rnd.choice(["min_mod_revision", "max_mod_revision",
                                   "min_create_revision", "max_create_revision"]), lo)
        return r

    def put_req(self) -> rpc.PutRequest:
        rnd = self.rnd
        p = rpc.PutRequest(key=self.key(), value=self.value(), prev_kv=rnd.random() < 0.4)
        r = rnd.random()
        if r < 0.08:
            p.ignore_value, p.value = True, b""
        elif r < 0.12:
            p.ignore_lease = True
        elif r < 0.14:
            p.lease = rnd.randrange(1, 1000)   # no leases exist: "requested lease not found"
        return p

    def delete_req(self) -> rpc.DeleteRangeRequest:
        k = self.key()
        return rpc.DeleteRangeRequest(key=k, range_end=self.range_end(k), prev_kv=self.rnd.random() < 0.5)

    def compare(self) -> rpc.Compare:
        rnd = self.rnd
        c = CMP(key=self.key(), result=rnd.choice([CMP.EQUAL, CMP.NOT_EQUAL, CMP.LESS, CMP.GREATER]),
                target=rnd.choice([CMP.VERSION, CMP.CREATE, CMP.MOD, CMP.VALUE, CMP.LEASE]))
        if rnd.random() < 0.2:
            c.range_end = self.range_end(c.key)
        t = c.target
        if t == CMP.VALUE:
            c.value = self.value()
        elif t == CMP.VERSION:
            c.version = rnd.randrange(0, 4)
        elif t == CMP.CREATE:
            c.create_revision = rnd.randrange(0, self.max_rev + 2)
        elif t == CMP.MOD:
            c.mod_revision = rnd.randrange(0, self.max_rev + 2)
        else:
            c.lease = 0
        return c

    def op(self, depth: int = 0) -> rpc.RequestOp:
        r = self.rnd.random()
        if r < 0.35:
            return rpc.RequestOp(request_range=self.range_req())
        if r < 0.75:
            return rpc.RequestOp(request_put=self.put_req())
        if r < 0.93 or depth >= 2:
            return rpc.RequestOp(request_delete_range=self.delete_req())
        return rpc.RequestOp(request_txn=self.txn_req(depth + 1))

    def txn_req(self, depth: int = 0) -> rpc.TxnRequest:
        rnd = self.rnd
        return rpc.TxnRequest(compare=[self.compare() for _ in range(rnd.randrange(0, 3))],
                              success=[self.op(depth) for _ in range(rnd.randrange(0, 4))],
                              failure=[self.op(depth) for _ in range(rnd.randrange(0, 3))])

    def compaction_req(self) -> rpc.CompactionRequest:
        r = self.rnd.random()
        if r < 0.2:
            rev = self.rnd.randrange(0, self.compacted + 1)            # already compacted
        elif r < 0.3:
            rev = self.max_rev + self.rnd.randrange(1, 4)              # future
        else:
            rev = self.rnd.randrange(self.compacted + 1, self.max_rev + 1) if self.max_rev > self.compacted else 1
        return rpc.CompactionRequest(revision=rev, physical=self.rnd.random() < 0.5)

    def next(self) -> tuple[str, object]:
        """The next (method, request)."""
        r = self.rnd.random()
        if r < 0.3:
            return "Range", self.range_req()
        if r < 0.6:
            return "Put", self.put_req()
        if r < 0.72:
            return "DeleteRange", self.delete_req()
        if r < 0.96:
            return "Txn", self.txn_req()
        if r < 0.98:
            return "Compact", self.compaction_req()
        return "HashKV", rpc.HashKVRequest(revision=0)

    def observe(self, header_revision: int, method: str, req, ok: bool) -> None:
        self.max_rev = max(self.max_rev, header_revision)
        if method == "Compact" and ok:
            self.compacted = max(self.compacted, req.revision)
