"""Concurrent client traffic and watches over gRPC (grpc.aio), recorded into a History.

Each client loops over a random mix of puts, deletes, compare-and-swap txns, linearizable and
serializable ranges, and lease cycles (grant, put a key attached to the lease, revoke), on a
small key set under the run's prefix so that ops collide. Values are unique per write, which
lets the checkers recognise an indeterminate write when it shows up later.

Errors are classified: a status code that etcd returns before proposing (invalid argument,
not found, failed precondition, out of range, resource exhausted, "no leader") is ``fail``
(not applied); anything else (deadline, unavailable, "leader changed", "request timed out"...)
is ``unknown``. When in doubt, ``unknown`` is the safe answer: it only widens what the checker
accepts.

Leases are granted with a TTL far longer than any run, so no lease expires by itself: every
revision in the run is caused by a recorded client operation.
"""
from __future__ import annotations

import asyncio
import random
import time
from typing import Callable

import grpc

from pyetcd.keyrange import prefix_end
from pyetcd.pb import kv as kvpb
from pyetcd.pb import rpc, rpc_grpc

from .history import History, Op, WatchRecord

_DEFINITE = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.NOT_FOUND,
             grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE,
             grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.PERMISSION_DENIED}
LEASE_TTL = 3600


def kv_list(kv) -> list:
    return [kv.value.decode(), kv.create_revision, kv.mod_revision, kv.version]


def classify(e: grpc.RpcError) -> str:
    code = e.code() if hasattr(e, "code") else None
    details = (e.details() or "") if hasattr(e, "details") else ""
    if code in _DEFINITE or "no leader" in details:
        return "fail"
    if code == grpc.StatusCode.UNAVAILABLE and "failed to connect" in details:
        return "fail"   # the client never had a connection: the request was not sent
    return "unknown"


class Traffic:
    def __init__(self, endpoints: Callable[[], list[str]], prefix: str, seed: int,
                 clients: int = 6, keys: int = 6, rate: float = 300.0, timeout: float = 3.0):
        self.endpoints = endpoints
        self.prefix = prefix
        self.seed = seed
        self.n_clients = clients
        self.keys = [f"{prefix}k{i}" for i in range(keys)]
        self.rate = rate
        self.timeout = timeout
        self.history = History()
        self.t0 = time.monotonic()
        self._next_op = 0
        self._next_watch = 0
        self.stop = asyncio.Event()          # clients stop
        self.stop_watch = asyncio.Event()    # then watchers ask for progress and finish
        self.last_full_watch_rev = 0   # nemesis must not compact past what the log has seen
        self.compact_rev = 0           # highest revision the nemesis asked to compact
        self._channels: dict[str, grpc.aio.Channel] = {}

    def now(self) -> float:
        return time.monotonic() - self.t0

    def channel(self, endpoint: str) -> grpc.aio.Channel:
        ch = self._channels.get(endpoint)
        if ch is None:
            ch = self._channels[endpoint] = grpc.aio.insecure_channel(endpoint, options=[
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 500)])
        return ch

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()

    # -- one recorded call ---------------------------------------------------------------
    async def _call(self, client: int, endpoint: str, kind: str, args: dict, fn) -> Op:
        op = Op(self._next_op, client, kind, args, self.now(), endpoint=endpoint)
        self._next_op += 1
        self.history.ops.append(op)
        try:
            op.result = await fn(self.channel(endpoint))
            op.ret = self.now()
            op.status = "ok"
        except grpc.RpcError as e:
            op.status = classify(e)
            op.error = f"{e.code().name if e.code() else ''}: {e.details()}"
            op.ret = self.now() if op.status == "fail" else None
        except asyncio.CancelledError:
            op.status, op.error, op.ret = "unknown", "cancelled", None
            raise
        return op

    # -- ops -----------------------------------------------------------------------------
    def _put(self, key, value, lease=0):
        async def fn(ch):
            r = await rpc_grpc.KVStub(ch).Put(rpc.PutRequest(
                key=key.encode(), value=value.encode(), lease=lease), timeout=self.timeout)
            return {"rev": r.header.revision}
        return fn

    def _delete(self, key):
        async def fn(ch):
            r = await rpc_grpc.KVStub(ch).DeleteRange(rpc.DeleteRangeRequest(key=key.encode()),
                                                      timeout=self.timeout)
            return {"rev": r.header.revision, "deleted": r.deleted}
        return fn

    def _range(self, key, serializable):
        async def fn(ch):
            r = await rpc_grpc.KVStub(ch).Range(rpc.RangeRequest(
                key=key.encode(), serializable=serializable), timeout=self.timeout)
            return {"rev": r.header.revision, "kv": kv_list(r.kvs[0]) if r.kvs else None}
        return fn

    def _txn(self, key, expect, value):
        k = key.encode()
        if expect is None:
            cmp = rpc.Compare(result=rpc.Compare.EQUAL, target=rpc.Compare.CREATE, key=k,
                              create_revision=0)
        else:
            cmp = rpc.Compare(result=rpc.Compare.EQUAL, target=rpc.Compare.VALUE, key=k,
                              value=expect.encode())
        req = rpc.TxnRequest(
            compare=[cmp],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value.encode()))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))])

        async def fn(ch):
            r = await rpc_grpc.KVStub(ch).Txn(req, timeout=self.timeout)
            out = {"rev": r.header.revision, "succeeded": r.succeeded}
            if not r.succeeded:
                kvs = r.responses[0].response_range.kvs
                out["kv"] = kv_list(kvs[0]) if kvs else None
            return out
        return fn

    def _lease_grant(self, lease):
        async def fn(ch):
            r = await rpc_grpc.LeaseStub(ch).LeaseGrant(
                rpc.LeaseGrantRequest(TTL=LEASE_TTL, ID=lease), timeout=self.timeout)
            if r.error:
                raise RuntimeError(r.error)
            return {"rev": r.header.revision}
        return fn

    def _lease_revoke(self, lease):
        async def fn(ch):
            r = await rpc_grpc.LeaseStub(ch).LeaseRevoke(rpc.LeaseRevokeRequest(ID=lease),
                                                         timeout=self.timeout)
            return {"rev": r.header.revision}
        return fn

    # -- clients -------------------------------------------------------------------------
    async def client(self, cid: int) -> None:
        rnd = random.Random(self.seed * 7919 + cid)
        seq = 0
        last_seen: dict[str, str | None] = {}
        pick = cid

        def endpoint():
            eps = self.endpoints()
            return eps[pick % len(eps)]
        while not self.stop.is_set():
            seq += 1
            key = rnd.choice(self.keys)
            value = f"c{cid}-{seq}"
            x = rnd.random()
            ep = endpoint()
            if x < 0.25:
                op = await self._call(cid, ep, "put", {"key": key, "value": value, "lease": 0},
                                      self._put(key, value))
            elif x < 0.33:
                op = await self._call(cid, ep, "delete", {"key": key}, self._delete(key))
            elif x < 0.48:
                expect = last_seen.get(key)
                op = await self._call(cid, ep, "txn", {"key": key, "expect": expect,
                                                       "value": value},
                                      self._txn(key, expect, value))
                if op.status == "ok":
                    kv = op.result.get("kv")
                    last_seen[key] = value if op.result["succeeded"] else (kv[0] if kv else None)
            elif x < 0.93:
                ser = x >= 0.81
                op = await self._call(cid, ep, "range", {"key": key, "serializable": ser},
                                      self._range(key, ser))
                if op.status == "ok":
                    kv = op.result["kv"]
                    last_seen[key] = kv[0] if kv else None
            else:
                op = await self._lease_cycle(cid, ep, seq)
            if op.status != "ok":
                pick += 1   # try another member next, after a short pause
                await asyncio.sleep(rnd.uniform(0.05, 0.2))
            await asyncio.sleep(rnd.uniform(0, 2 * self.n_clients / self.rate))

    async def _lease_cycle(self, cid: int, ep: str, seq: int) -> Op:
        lease = cid * 1_000_000 + seq
        key = f"{self.prefix}lease/{lease}"
        op = await self._call(cid, ep, "lease_grant", {"lease": lease, "ttl": LEASE_TTL},
                              self._lease_grant(lease))
        if op.status != "ok":
            return op
        value = f"c{cid}-{seq}-l"
        op = await self._call(cid, ep, "put", {"key": key, "value": value, "lease": lease},
                              self._put(key, value, lease))
        if op.status == "unknown":
            return op
        return await self._call(cid, ep, "lease_revoke", {"lease": lease, "key": key},
                                self._lease_revoke(lease))

    # -- watches -------------------------------------------------------------------------
    async def watcher(self, start_rev: int, prev_kv: bool, full: bool, until: float | None,
                      rnd: random.Random) -> None:
        """Watch the prefix from ``start_rev`` until the run ends (or ``until``), reopening on
        another member from the next revision after any failure. One WatchRecord per stream."""
        pick = rnd.randrange(1000)
        nxt = start_rev
        while not self.stop_watch.is_set() and (until is None or self.now() < until):
            eps = self.endpoints()
            ep = eps[pick % len(eps)]
            pick += 1
            rec = WatchRecord(self._next_watch, ep, self.prefix, nxt, prev_kv, opened=self.now())
            self._next_watch += 1
            self.history.watches.append(rec)
            try:
                await self._watch_stream(rec, full, until)
            except (grpc.RpcError, asyncio.TimeoutError) as e:
                rec.end = f"error: {e.code().name if hasattr(e, 'code') else type(e).__name__}"
            if rec.events:
                nxt = max(e["rev"] for e in rec.events) + 1
            elif rec.start_rev:
                nxt = rec.start_rev
            if rec.compact_rev:
                return
            await asyncio.sleep(0.2)

    async def _watch_stream(self, rec: WatchRecord, full: bool, until: float | None) -> None:
        p = self.prefix.encode()
        call = rpc_grpc.WatchStub(self.channel(rec.endpoint)).Watch()
        try:
            await call.write(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
                key=p, range_end=prefix_end(p), start_revision=rec.start_rev,
                prev_kv=rec.prev_kv)))
            final_rev = None
            while True:
                if final_rev is None and self.stop_watch.is_set():
                    # End of run: ask for progress; it promises all events up to its revision.
                    await call.write(rpc.WatchRequest(progress_request=rpc.WatchProgressRequest()))
                    final_rev = -1
                if until is not None and self.now() > until:
                    rec.end = "closed"
                    return
                try:
                    resp = await asyncio.wait_for(call.read(), 0.5 if final_rev else 1.0)
                except asyncio.TimeoutError:
                    if final_rev is not None and final_rev >= 0:
                        rec.end = "end of run"
                        return
                    if final_rev == -1 and self.now() > self._stop_at + 10:
                        rec.end = "no progress response at end of run"
                        return
                    continue
                if resp is grpc.aio.EOF:
                    rec.end = "eof"
                    return
                if resp.created:
                    if rec.start_rev == 0:
                        rec.start_rev = resp.header.revision + 1
                        rec.start_from_now = True
                    if resp.canceled:
                        rec.end = f"create refused: {resp.cancel_reason}"
                        return
                    continue
                if resp.canceled:
                    rec.compact_rev = resp.compact_revision
                    rec.end = f"canceled: {resp.cancel_reason} compact={resp.compact_revision}"
                    return
                if not resp.events:
                    rec.progress.append(resp.header.revision)
                    if final_rev == -1:
                        final_rev = resp.header.revision
                    continue
                at = self.now()
                first = resp.events[0].kv.mod_revision
                if not rec.events and rec.start_from_now and first < rec.start_rev:
                    # A write raced the created response: the watch really began earlier.
                    rec.start_rev = first
                for ev in resp.events:
                    put = ev.type == kvpb.Event.PUT
                    rec.events.append({
                        "rev": ev.kv.mod_revision, "type": "PUT" if put else "DELETE",
                        "key": ev.kv.key.decode(), "kv": kv_list(ev.kv) if put else None,
                        "prev_kv": (kv_list(ev.prev_kv) if ev.HasField("prev_kv") else None),
                        "at": at})
                if full:
                    self.last_full_watch_rev = max(self.last_full_watch_rev,
                                                   rec.events[-1]["rev"])
        finally:
            call.cancel()

    async def extra_watchers(self, rnd: random.Random, duration: float) -> None:
        """Short-lived watches opened at random times, from 'now' or from a recent revision."""
        tasks = []
        while not self.stop.is_set():
            await asyncio.sleep(rnd.uniform(0.5, 3.0))
            if self.stop.is_set():
                break
            start = 0
            if rnd.random() < 0.5 and self.last_full_watch_rev > 50:
                start = self.last_full_watch_rev - rnd.randrange(50)
            until = None if rnd.random() < 0.3 else self.now() + rnd.uniform(1, duration / 2)
            tasks.append(asyncio.create_task(self.watcher(start, rnd.random() < 0.5, False,
                                                          until, rnd)))
            tasks = [t for t in tasks if not t.done()]
            if len(tasks) > 3:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def run(self, duration: float, nemesis=None) -> History:
        """Traffic for ``duration`` seconds while ``nemesis`` (an awaitable factory) runs."""
        self._stop_at = duration
        rnd = random.Random(self.seed)
        full = asyncio.create_task(self.watcher(1, True, True, None, rnd))
        extra = asyncio.create_task(self.extra_watchers(random.Random(self.seed + 1), duration))
        clients = [asyncio.create_task(self.client(i)) for i in range(self.n_clients)]
        nem = asyncio.create_task(nemesis()) if nemesis else None
        try:
            await asyncio.sleep(duration)
        finally:
            self._stop_at = self.now()
            if nem is not None:
                await nem      # faults healed before the quiet phase
            self.stop.set()
            await asyncio.gather(*clients, return_exceptions=True)
            self._stop_at = self.now()
            self.stop_watch.set()
            await asyncio.gather(full, extra, return_exceptions=True)
        return self.history
