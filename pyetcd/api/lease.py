"""etcdserverpb.Lease: LeaseGrant, LeaseRevoke, LeaseKeepAlive, LeaseTimeToLive, LeaseLeases;
and the leader's expiry loop, ``run_expiry``.

As in etcd (server/etcdserver/v3_server.go, api/v3rpc/lease.go):
  - Grant and Revoke go through the log (lease_grant / lease_revoke), so every member applies them.
    Grant with ID 0: the server picks a positive ID from etcd's request-id generator
    (member id's low 16 bits | 40 bits of Unix milliseconds | 8-bit counter, top bit cleared).
  - KeepAlive renews on the leader only, without a log entry. The response header is filled
    *before* the renew, so its revision is never newer than the renew. An unknown lease answers
    TTL 0 (etcdctl prints "lease ... not found"). A lease that has expired but is not revoked
    yet waits for its revoke and then answers TTL 0, as etcd's Renew waits on revokec.
  - TimeToLive of an unknown lease answers TTL -1 (etcdctl: "already expired"), not an error.
  - Leases lists the IDs, soonest expiry first.
Attached keys are reported in byte order (etcd reports them in Go map order, i.e. at random).

``run_expiry``: etcd's lessor checks every 500 ms. This loop instead sleeps until the lessor's
next deadline (at least 10 ms, at most 500 ms), so an expired lease is revoked within a few
milliseconds of its expiry rather than within half a second; the cost is one wake-up per
deadline, bounded by the 10 ms floor.
"""
from __future__ import annotations

import asyncio
import time

import grpc

from pyetcd import errors
from pyetcd.lease import LeaseExpiredError, NotPrimaryError, request_timeout
from pyetcd.lease.lessor import MAX_CHECKPOINT_BATCH
from pyetcd.pb import raft_internal, rpc, rpc_grpc

from .base import Service, unary

MAX_PENDING_REVOKES = 16     # etcd: concurrent revoke proposals from the expiry loop
CHECKPOINT_BATCHES_PER_TICK = 500  # etcd: leaseCheckpointRate / 2 batches per loop at most
_EXPIRED_POLL = 0.05


class IDGenerator:
    """etcd's idutil.Generator: prefix = 16 bits of member id, then 40 bits of Unix ms and an
    8-bit counter, incremented per ID (the ms part only seeds the counter)."""

    def __init__(self, member_id: int, now_ms: int | None = None):
        if now_ms is None:
            now_ms = int(time.time() * 1000)
        self.prefix = (member_id & 0xFFFF) << 48
        self.suffix = (now_ms & ((1 << 40) - 1)) << 8

    def next(self) -> int:
        self.suffix += 1
        return self.prefix | (self.suffix & ((1 << 48) - 1))


class LeaseService(Service, rpc_grpc.LeaseServicer):
    def __init__(self, server):
        super().__init__(server)
        self._ids: IDGenerator | None = None

    @property
    def lessor(self):
        return self.server.lessor

    def _next_id(self) -> int:
        if self._ids is None:
            self._ids = IDGenerator(self.server.member_id)
        while True:
            lid = self._ids.next() & ((1 << 63) - 1)
            if lid != 0 and not self.lessor.exists(lid):
                return lid

    @unary
    async def LeaseGrant(self, request, context):
        if not self.server.quota.available(request):
            from pyetcd.server.alarms import refuse_over_quota
            await refuse_over_quota(self.server)
        req = rpc.LeaseGrantRequest()
        req.CopyFrom(request)
        if req.ID == 0:
            req.ID = self._next_id()
        return await self.server.propose(raft_internal.InternalRaftRequest(lease_grant=req))

    @unary
    async def LeaseRevoke(self, request, context):
        resp = await self.server.propose(raft_internal.InternalRaftRequest(lease_revoke=request))
        if isinstance(resp, tuple):  # an applier result passed through as (response, events)
            resp = resp[0]
        return resp

    @unary
    async def LeaseTimeToLive(self, request, context):
        try:
            ttl, granted, keys = await self._time_to_live(request.ID, request.keys)
        except errors.EtcdError as e:
            if e != errors.ErrLeaseNotFound:
                raise
            return rpc.LeaseTimeToLiveResponse(ID=request.ID, TTL=-1)
        resp = rpc.LeaseTimeToLiveResponse(ID=request.ID, TTL=ttl, grantedTTL=granted)
        if request.keys:
            resp.keys.extend(keys)
        return resp

    async def _time_to_live(self, lease_id: int, keys: bool):
        """The leader's answer: only the leader's lessor runs the clocks (a follower's leases
        never expire), so a follower asks the leader over the peer port, as etcd does, waiting
        up to the request timeout for one."""
        s = self.server
        transport = getattr(s, "transport", None)
        if transport is None or s.is_leader:
            return self.lessor.time_to_live(lease_id)
        deadline = time.monotonic() + request_timeout(s.cfg.election_timeout)
        while True:
            if s.is_leader:
                return self.lessor.time_to_live(lease_id)
            if s.leader_id:
                try:
                    return await transport.forward_lease_ttl(
                        s.leader_id, lease_id, keys, timeout=max(0.1, deadline - time.monotonic()))
                except errors.EtcdError as e:
                    if e != errors.ErrNoLeader:
                        raise
            if time.monotonic() >= deadline:
                raise errors.ErrTimeout
            await asyncio.sleep(s.cfg.heartbeat_interval / 1000)

    @unary
    async def LeaseLeases(self, request, context):
        resp = rpc.LeaseLeasesResponse()
        for lease in self.lessor.leases():
            resp.leases.add(ID=lease.id)
        return resp

    async def LeaseKeepAlive(self, request_iterator, context):
        try:
            async for req in request_iterator:
                resp = rpc.LeaseKeepAliveResponse(ID=req.ID)
                self.server.fill_header(resp.header)
                try:
                    resp.TTL = await self.renew(req.ID)
                except errors.EtcdError as e:
                    await context.abort(e.code, e.message)
                yield resp
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as e:  # a bug must not take the server down
            self.server.lg.error("lease keepalive stream failed", error=repr(e))
            await context.abort(grpc.StatusCode.INTERNAL, f"pyetcd: internal error: {e!r}")

    async def renew(self, lease_id: int) -> int:
        """The TTL after a renew; 0 if the lease does not exist (or was revoked on expiry)."""
        deadline = time.monotonic() + request_timeout(self.server.cfg.election_timeout)
        while True:
            lessor = self.lessor
            try:
                if lessor.renew_needs_checkpoint_clear(lease_id):
                    cp = rpc.LeaseCheckpointRequest()
                    cp.checkpoints.add(ID=lease_id, remaining_TTL=0)
                    await self.server.propose(raft_internal.InternalRaftRequest(lease_checkpoint=cp))
                return lessor.renew(lease_id)
            except errors.EtcdError as e:
                if e == errors.ErrLeaseNotFound:
                    return 0
                raise
            except NotPrimaryError:
                # Only the leader renews (etcd forwards keepalives over the peer port).
                s = self.server
                transport = getattr(s, "transport", None)
                if transport is None or getattr(s, "leader_id", 0) == 0:
                    raise errors.ErrNoLeader from None
                try:
                    return await transport.forward_lease_renew(s.leader_id, lease_id)
                except errors.EtcdError as e:
                    if e == errors.ErrLeaseNotFound:
                        return 0
                    raise
            except LeaseExpiredError:
                if time.monotonic() >= deadline:
                    raise errors.ErrTimeout from None
                await asyncio.sleep(_EXPIRED_POLL)


async def run_expiry(server, lessor, max_interval: float = 0.5, min_interval: float = 0.01) -> None:
    """On the leader: propose a LeaseRevoke for every expired lease (at most 16 in flight, as
    etcd), and, with checkpointing on, LeaseCheckpoint batches of up to 1000 leases."""
    sem = asyncio.Semaphore(MAX_PENDING_REVOKES)
    inflight: set[asyncio.Task] = set()
    revoking: set[int] = set()

    async def revoke(lease_id: int) -> None:
        try:
            await server.propose(raft_internal.InternalRaftRequest(
                lease_revoke=rpc.LeaseRevokeRequest(ID=lease_id)))
        except errors.EtcdError as e:
            if e != errors.ErrLeaseNotFound and e != errors.ErrStopped:
                server.lg.warn("failed to revoke lease", **{"lease-id": f"{lease_id:016x}", "error": str(e)})
        except Exception as e:  # keep the loop alive
            server.lg.warn("failed to revoke lease", **{"lease-id": f"{lease_id:016x}", "error": repr(e)})
        finally:
            revoking.discard(lease_id)
            sem.release()

    try:
        while True:
            try:
                for lease in lessor.expired():
                    if lease.id in revoking:
                        continue
                    await sem.acquire()
                    revoking.add(lease.id)
                    t = asyncio.create_task(revoke(lease.id), name=f"lease-revoke-{lease.id:x}")
                    inflight.add(t)
                    t.add_done_callback(inflight.discard)
                for _ in range(CHECKPOINT_BATCHES_PER_TICK):
                    cps = lessor.due_checkpoints()
                    if cps:
                        req = rpc.LeaseCheckpointRequest()
                        for lid, rem in cps:
                            req.checkpoints.add(ID=lid, remaining_TTL=rem)
                        try:
                            await server.propose(raft_internal.InternalRaftRequest(lease_checkpoint=req))
                        except errors.EtcdError as e:
                            server.lg.warn("failed to checkpoint leases", error=str(e))
                    if len(cps) < MAX_CHECKPOINT_BATCH:
                        break
            except asyncio.CancelledError:
                raise
            except Exception as e:
                server.lg.error("lease expiry loop failed", error=repr(e))
            delay = max_interval
            nd = lessor.next_deadline()
            if nd is not None:
                delay = min(max_interval, max(min_interval, nd - lessor.now()))
            await asyncio.sleep(delay)
    finally:
        for t in list(inflight):
            t.cancel()
