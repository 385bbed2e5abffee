"""A tiny in-process fake of etcd's gRPC API (single member, in memory), test-only.

It implements just what the robustness traffic uses: Put, Range (incl. at a revision),
DeleteRange, single-compare Txn, LeaseGrant/LeaseRevoke, Watch (start revision, prev_kv,
progress requests). Correct by default; ``bug=`` plants a deliberate fault so the tests can
prove the checkers catch it:

- ``stale_read``: some linearizable Ranges are answered from an older revision (as a lagging
  replica would), header included.
- ``lost_write``: some Puts are acknowledged with a revision but never applied.
- ``reordered_watch``: watch streams sometimes deliver two events out of revision order.
"""
from __future__ import annotations

import asyncio
import random
import threading

import grpc

from pyetcd.pb import kv as kvpb
from pyetcd.pb import rpc, rpc_grpc

BUGS = ("stale_read", "lost_write", "reordered_watch")


class Store:
    def __init__(self, bug: str | None, seed: int):
        self.bug = bug
        self.rnd = random.Random(seed)
        self.rev = 1
        self.log: list[tuple[int, bytes, object]] = []   # (rev, key, KeyValue or None=delete)
        self.state: dict[bytes, kvpb.KeyValue] = {}
        self.leases: dict[int, set[bytes]] = {}
        self.changed = asyncio.Condition()

    def at(self, rev: int) -> dict[bytes, kvpb.KeyValue]:
        st: dict[bytes, kvpb.KeyValue] = {}
        for r, k, kv in self.log:
            if r > rev:
                break
            if kv is None:
                st.pop(k, None)
            else:
                st[k] = kv
        return st

    def header(self, rev=None):
        return rpc.ResponseHeader(cluster_id=1, member_id=1, revision=rev or self.rev, raft_term=1)

    def _write(self, changes: list[tuple[bytes, bytes | None, int]]) -> None:
        """One transaction: [(key, value or None for delete, lease)]; bumps the revision."""
        self.rev += 1
        for key, value, lease in changes:
            if value is None:
                self.state.pop(key, None)
                self.log.append((self.rev, key, None))
                continue
            old = self.state.get(key)
            kv = kvpb.KeyValue(key=key, value=value, lease=lease, mod_revision=self.rev,
                               create_revision=old.create_revision if old else self.rev,
                               version=old.version + 1 if old else 1)
            self.state[key] = kv
            self.log.append((self.rev, key, kv))
            if lease:
                self.leases[lease].add(key)

    def put(self, key, value, lease) -> int:
        if lease and lease not in self.leases:
            raise KeyError("lease")
        if self.bug == "lost_write" and self.rnd.random() < 0.05:
            return self.rev + 1          # acknowledged, never applied
        self._write([(key, value, lease)])
        return self.rev

    def range(self, key, end, rev, serializable):
        cur = self.rev
        if self.bug == "stale_read" and not serializable and not rev and self.rnd.random() < 0.2:
            cur = rev = max(1, self.rev - self.rnd.randrange(1, 6))
        st = self.at(rev) if rev else self.state
        if end:
            kvs = [st[k] for k in sorted(st) if key <= k < end]
        else:
            kvs = [st[key]] if key in st else []
        return kvs, (rev or cur)


class Servicer(rpc_grpc.KVServicer, rpc_grpc.LeaseServicer, rpc_grpc.WatchServicer):
    def __init__(self, store: Store):
        self.s = store

    async def _notify(self):
        async with self.s.changed:
            self.s.changed.notify_all()

    async def Range(self, req, ctx):
        kvs, rev = self.s.range(req.key, req.range_end, req.revision, req.serializable)
        if req.keys_only:
            kvs = [kvpb.KeyValue(key=k.key, mod_revision=k.mod_revision) for k in kvs]
        return rpc.RangeResponse(header=self.s.header(rev), kvs=kvs, count=len(kvs))

    async def Put(self, req, ctx):
        try:
            rev = self.s.put(req.key, req.value, req.lease)
        except KeyError:
            await ctx.abort(grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found")
        await self._notify()
        return rpc.PutResponse(header=self.s.header(rev))

    async def DeleteRange(self, req, ctx):
        n = int(req.key in self.s.state)
        if n:
            self.s._write([(req.key, None, 0)])
            await self._notify()
        return rpc.DeleteRangeResponse(header=self.s.header(), deleted=n)

    async def Txn(self, req, ctx):
        c = req.compare[0]
        cur = self.s.state.get(c.key)
        if c.target == rpc.Compare.VALUE:
            ok = cur is not None and cur.value == c.value
        else:
            ok = (cur.create_revision if cur else 0) == c.create_revision
        resps = []
        for op in (req.success if ok else req.failure):
            if op.HasField("request_put"):
                p = op.request_put
                self.s.put(p.key, p.value, p.lease)
                resps.append(rpc.ResponseOp(response_put=rpc.PutResponse()))
            else:
                kvs, _ = self.s.range(op.request_range.key, b"", 0, True)
                resps.append(rpc.ResponseOp(response_range=rpc.RangeResponse(kvs=kvs)))
        await self._notify()
        return rpc.TxnResponse(header=self.s.header(), succeeded=ok, responses=resps)

    async def LeaseGrant(self, req, ctx):
        self.s.leases.setdefault(req.ID, set())
        return rpc.LeaseGrantResponse(header=self.s.header(), ID=req.ID, TTL=req.TTL)

    async def LeaseRevoke(self, req, ctx):
        keys = self.s.leases.pop(req.ID, None)
        if keys is None:
            await ctx.abort(grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found")
        live = [k for k in sorted(keys) if k in self.s.state]
        if live:
            self.s._write([(k, None, 0) for k in live])
            await self._notify()
        return rpc.LeaseRevokeResponse(header=self.s.header())

    async def Watch(self, request_iterator, ctx):
        s = self.s
        first = await request_iterator.__anext__()
        cr = first.create_request
        start = cr.start_revision or s.rev + 1
        pos = 0
        progress = asyncio.Event()
        rnd = random.Random(start)

        async def reader():
            async for r in request_iterator:
                if r.HasField("progress_request"):
                    progress.set()
                    async with s.changed:
                        s.changed.notify_all()
        rtask = asyncio.create_task(reader())
        try:
            yield rpc.WatchResponse(header=s.header(), watch_id=1, created=True)
            while True:
                evs = []
                while pos < len(s.log):
                    rev, key, kv = s.log[pos]
                    pos += 1
                    if rev < start or not (cr.key <= key < cr.range_end):
                        continue
                    prev = s.at(rev - 1).get(key) if cr.prev_kv else None
                    ev = kvpb.Event(type=kvpb.Event.PUT if kv is not None else kvpb.Event.DELETE,
                                    kv=kv if kv is not None else kvpb.KeyValue(key=key,
                                                                               mod_revision=rev))
                    if prev is not None:
                        ev.prev_kv.CopyFrom(prev)
                    evs.append(ev)
                if len(evs) > 1 and s.bug == "reordered_watch" and rnd.random() < 0.3:
                    i = rnd.randrange(len(evs) - 1)
                    if evs[i].kv.mod_revision != evs[i + 1].kv.mod_revision:
                        evs[i], evs[i + 1] = evs[i + 1], evs[i]
                if evs:
                    yield rpc.WatchResponse(header=s.header(), watch_id=1, events=evs)
                if progress.is_set():
                    progress.clear()
                    yield rpc.WatchResponse(header=s.header(), watch_id=1)
                async with s.changed:
                    if pos >= len(s.log) and not progress.is_set():
                        await s.changed.wait()
        finally:
            rtask.cancel()


class FakeEtcd:
    """Runs the fake on its own loop in a thread; ``endpoint`` is 127.0.0.1:PORT."""

    def __init__(self, bug: str | None = None, seed: int = 0):
        self.bug, self.seed = bug, seed
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.endpoint = ""

    def start(self) -> "FakeEtcd":
        self.thread.start()
        self.endpoint = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    async def _start(self) -> str:
        self.store = Store(self.bug, self.seed)
        self.server = grpc.aio.server()
        svc = Servicer(self.store)
        rpc_grpc.add_KVServicer_to_server(svc, self.server)
        rpc_grpc.add_LeaseServicer_to_server(svc, self.server)
        rpc_grpc.add_WatchServicer_to_server(svc, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        return f"127.0.0.1:{port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(0), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
