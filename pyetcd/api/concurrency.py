"""clientv3/concurrency's recipes, run inside the server for the Election and Lock services.

etcd 3.5.1 serves v3election and v3lock by running the client library's Session, Mutex and
Election against itself through a loopback client. pyetcd runs the same steps against its own
internals: ``LocalClient`` is that loopback. Its writes are proposals (as the KV service makes
them), its reads are linearizable (clientv3's default), and its watches are watch streams on the
member's watchable store. Every response carries a full header, as a client would receive it.

What the recipes do, step for step as etcd 3.5.1's client/v3/concurrency:

- A session with lease 0 grants a fresh 60 s lease (``defaultSessionTTL``) and orphans it; the
  services never revoke it. Any other lease ID is used as given, even one that does not exist
  (the first write with it then fails with ``requested lease not found``). etcd's session also
  starts a keep-alive and drops it at once, which may or may not renew the lease once; pyetcd
  does not renew.
- Mutex.Lock: one Txn puts ``<name>/<lease hex>`` if its create revision is 0 (else reads it)
  and reads the oldest key of the prefix. If that is not ours, wait until every key created
  before ours is deleted (``wait_deletes``), then read our key again: gone means "mutex: session
  is expired". A failed or cancelled wait deletes our key.
- Election.Campaign: the same Txn without the owner read; an existing key with another value is
  proclaimed first. The header returned is the first Txn's (its revision is the key's creation),
  even when the campaign waited. A cancelled wait resigns (deletes the key if still ours).
- Errors reach the client as clientv3 hands them to the server: etcd's texts with gRPC code
  UNKNOWN (see ``recipe_error``).
"""
from __future__ import annotations

import asyncio
import functools
from contextlib import aclosing

import grpc

from pyetcd import errors
from pyetcd.keyrange import prefix_end
from pyetcd.auth.context import client_identity
from pyetcd.pb import kv as mvccpb
from pyetcd.pb import raft_internal, rpc
from pyetcd.server.apply import check
from pyetcd.watch import Control, WatchStream

_C = grpc.StatusCode
_RR = rpc.RangeRequest
_CMP = rpc.Compare

DEFAULT_SESSION_TTL = 60  # clientv3/concurrency defaultSessionTTL, seconds

# clientv3/concurrency's errors (errors.New, so the gRPC code is UNKNOWN).
ErrElectionNotLeader = errors.EtcdError(_C.UNKNOWN, "election: not leader")
ErrElectionNoLeader = errors.EtcdError(_C.UNKNOWN, "election: no leader")
ErrSessionExpired = errors.EtcdError(_C.UNKNOWN, "mutex: session is expired")
# v3election's check of a ProclaimRequest/ResignRequest without ``leader``.
ErrMissingLeaderKey = errors.EtcdError(_C.UNKNOWN, '"leader" field must be provided')
ErrLostWatcher = errors.EtcdError(_C.UNKNOWN, "lost watcher waiting for delete")


def recipe_error(e: errors.EtcdError) -> errors.EtcdError:
    """The status a recipe's failure reaches the client with. clientv3 turns a server error it
    knows into an rpctypes.EtcdError, which carries no gRPC status, so etcd's gRPC server sends
    it as UNKNOWN with the same text. pyetcd's own UNIMPLEMENTED answers keep their code."""
    if e.code == _C.UNIMPLEMENTED:
        return e
    return errors.EtcdError(_C.UNKNOWN, e.message)


def lease_key(prefix: bytes, lease: int) -> bytes:
    """Go's fmt.Sprintf("%s%x", pfx, leaseID): lower-case hex, no padding, sign kept."""
    return prefix + format(lease, "x").encode()


def first_create(prefix: bytes, max_create_rev: int = 0, last: bool = False) -> rpc.RangeRequest:
    """clientv3.WithFirstCreate / WithLastCreate (+ WithMaxCreateRev) on a prefix."""
    return rpc.RangeRequest(key=prefix, range_end=prefix_end(prefix), limit=1,
                            sort_target=_RR.CREATE, sort_order=_RR.DESCEND if last else _RR.ASCEND,
                            max_create_revision=max_create_rev)


def _cmp_create(key: bytes, rev: int) -> rpc.Compare:
    return rpc.Compare(key=key, target=_CMP.CREATE, result=_CMP.EQUAL, create_revision=rev)


class LocalClient:
    """The loopback client: the requests a clientv3 client would send, served by this member."""

    def __init__(self, server, watch_store, lease_service):
        self.server = server
        self.store = watch_store
        self.lease_service = lease_service   # shares its ID generator, as etcd's loopback does
        self._cleanups: set[asyncio.Task] = set()

    def _header(self, resp):
        self.server.fill_header(resp.header)
        return resp

    async def txn(self, req: rpc.TxnRequest) -> rpc.TxnResponse:
        s = self.server
        check.check_txn(req, s.cfg.max_txn_ops)
        if check.is_txn_readonly(req):
            await s.linearizable_read()
            applies, ai = client_identity()  # the caller's read permission, as etcd's Txn
            if applies:
                s.auth.check_txn(ai, req)
            return self._header(s.read_txn(req))
        return self._header(await s.propose(raft_internal.InternalRaftRequest(txn=req)))

    async def get(self, req: rpc.RangeRequest) -> rpc.RangeResponse:
        check.check_range(req)
        await self.server.linearizable_read()
        applies, ai = client_identity()  # the caller's read permission, as etcd's Range
        if applies:
            self.server.auth.check_range(ai, req.key, req.range_end)
        return self._header(self.server.applier.range(req))

    async def delete(self, key: bytes) -> rpc.DeleteRangeResponse:
        req = rpc.DeleteRangeRequest(key=key)
        check.check_delete(req)
        return self._header(await self.server.propose(raft_internal.InternalRaftRequest(delete_range=req)))

    async def grant(self, ttl: int) -> int:
        req = rpc.LeaseGrantRequest(TTL=ttl, ID=self.lease_service._next_id())
        resp = await self.server.propose(raft_internal.InternalRaftRequest(lease_grant=req))
        return resp.ID

    async def watch_events(self, key: bytes, end: bytes | None, start_rev: int):
        """Yield (header revision, events) of a watch from ``start_rev``, as clientv3.Watch; a
        compacted watcher raises etcd's compacted error. ``end`` as the watch store takes it."""
        ws = WatchStream(self.store)
        try:
            ws.watch(0, key, end, start_rev)
            while True:
                item = await ws.get()
                if item is None:
                    raise ErrLostWatcher
                if isinstance(item, Control):
                    continue
                if item.compact_revision:
                    raise errors.ErrCompacted
                yield item.revision, item.events
        finally:
            ws.close()

    def watch_header(self, rev: int) -> rpc.ResponseHeader:
        h = rpc.ResponseHeader(revision=rev)
        self.server.fill_header(h)
        return h

    def in_background(self, coro, what: str) -> None:
        """Run a clean-up that must outlive the cancelled request (etcd: ``client.Ctx()``)."""
        async def run():
            try:
                await coro
            except Exception as e:  # the lease still bounds the key's life
                log = self.server.lg.debug if e == errors.ErrStopped else self.server.lg.warn
                log("concurrency clean-up failed", what=what, error=repr(e))
        t = asyncio.get_running_loop().create_task(run())
        self._cleanups.add(t)
        t.add_done_callback(self._cleanups.discard)

    # ---- recipes ---------------------------------------------------------------------------
    async def session_lease(self, lease: int) -> int:
        """concurrency.NewSession(WithLease(lease)) then Orphan(): the lease the recipe uses."""
        if lease == 0:
            return await self.grant(DEFAULT_SESSION_TTL)
        return lease

    async def wait_delete(self, key: bytes, rev: int) -> None:
        async with aclosing(self.watch_events(key, None, rev)) as w:
            async for _, events in w:
                for ev in events:
                    if ev.type == mvccpb.Event.DELETE:
                        return

    async def wait_deletes(self, prefix: bytes, max_create_rev: int) -> rpc.ResponseHeader:
        """Wait until no key of ``prefix`` created at or below ``max_create_rev`` is left,
        watching the newest such key each round (etcd's waitDeletes)."""
        while True:
            resp = await self.get(first_create(prefix, max_create_rev, last=True))
            if not resp.kvs:
                return resp.header
            await self.wait_delete(resp.kvs[0].key, resp.header.revision)

    async def lock(self, name: bytes, lease: int) -> tuple[bytes, rpc.ResponseHeader]:
        """concurrency.Mutex.Lock; returns the owner key and the header to answer with."""
        lease = await self.session_lease(lease)
        pfx = name + b"/"
        key = lease_key(pfx, lease)
        owner = rpc.RequestOp(request_range=first_create(pfx))
        resp = await self.txn(rpc.TxnRequest(
            compare=[_cmp_create(key, 0)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key, lease=lease)), owner],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=key)), owner]))
        my_rev = resp.header.revision
        if not resp.succeeded:
            my_rev = resp.responses[0].response_range.kvs[0].create_revision
        holder = resp.responses[1].response_range.kvs
        if not holder or holder[0].create_revision == my_rev:
            return key, resp.header
        try:
            await self.wait_deletes(pfx, my_rev - 1)
            got = await self.get(rpc.RangeRequest(key=key))
        except BaseException:  # failed or cancelled (the client went away): give the key up
            self.in_background(self.delete(key), "unlock")
            raise
        if not got.kvs:  # our lease expired (or our key was deleted) while we waited
            raise ErrSessionExpired
        return key, got.header

    async def campaign(self, name: bytes, lease: int, value: bytes):
        """concurrency.Election.Campaign; returns (header, key, leader revision, lease)."""
        lease = await self.session_lease(lease)
        key = lease_key(name + b"/", lease)
        resp = await self.txn(rpc.TxnRequest(
            compare=[_cmp_create(key, 0)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value, lease=lease))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=key))]))
        rev = resp.header.revision
        if not resp.succeeded:
            kv = resp.responses[0].response_range.kvs[0]
            rev = kv.create_revision
            if kv.value != value:
                try:
                    await self.proclaim(key, rev, lease, value)
                except errors.EtcdError as e:
                    # etcd's Proclaim forgets the key when it finds it is not the leader, and
                    # the Resign that follows then has nothing to delete.
                    if e != ErrElectionNotLeader:
                        await self._resign_quietly(key, rev)
                    raise
        try:
            await self.wait_deletes(name + b"/", rev - 1)
        except asyncio.CancelledError:
            self.in_background(self.resign(key, rev), "resign")
            raise
        return resp.header, key, rev, lease

    async def _resign_quietly(self, key: bytes, rev: int) -> None:
        try:
            await self.resign(key, rev)
        except errors.EtcdError:
            pass

    async def proclaim(self, key: bytes, rev: int, lease: int, value: bytes) -> rpc.ResponseHeader:
        """concurrency.Election.Proclaim on a resumed election."""
        resp = await self.txn(rpc.TxnRequest(
            compare=[_cmp_create(key, rev)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value, lease=lease))]))
        if not resp.succeeded:
            raise ErrElectionNotLeader
        return resp.header

    async def resign(self, key: bytes, rev: int) -> rpc.ResponseHeader:
        """concurrency.Election.Resign: delete the key if it is still the one we created. Not
        being the leader is no error."""
        resp = await self.txn(rpc.TxnRequest(
            compare=[_cmp_create(key, rev)],
            success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key))]))
        return resp.header

    async def leader(self, name: bytes) -> rpc.RangeResponse:
        resp = await self.get(first_create(name + b"/"))
        if not resp.kvs:
            raise ErrElectionNoLeader
        return resp

    async def observe(self, name: bytes):
        """concurrency.Election.Observe: yield (header, kv) for the current leader and every
        change of it. Ends (without error) when a read or watch fails, as etcd's channel closes."""
        pfx = name + b"/"
        try:
            while True:
                resp = await self.get(first_create(pfx))
                if resp.kvs:
                    hdr, kv = resp.header, resp.kvs[0]
                else:
                    hdr = kv = None
                    end = prefix_end(pfx)
                    # only a put ends the wait: a delete would make the loop spin (etcd)
                    async with aclosing(self.watch_events(pfx, b"" if end == b"\x00" else end,
                                                          resp.header.revision)) as w:
                        async for _, events in w:
                            put = next((e for e in events if e.type == mvccpb.Event.PUT), None)
                            if put is not None:
                                kv = mvccpb.KeyValue()
                                kv.CopyFrom(put.kv)
                                hdr = self.watch_header(kv.mod_revision)
                                break
                yield hdr, kv
                async with aclosing(self.watch_events(kv.key, None, hdr.revision + 1)) as w:
                    deleted = False
                    async for wrev, events in w:
                        for ev in events:
                            if ev.type == mvccpb.Event.DELETE:
                                deleted = True
                                break
                            out = mvccpb.KeyValue()
                            out.CopyFrom(ev.kv)
                            yield self.watch_header(wrev), out
                        if deleted:
                            break
        except errors.EtcdError:
            return


def unary_recipe(fn):
    """A unary handler of the Election/Lock services: a recipe's error goes out as
    ``recipe_error`` makes it; a bug becomes INTERNAL, never a crash. Headers come from the
    loopback responses, already filled."""

    @functools.wraps(fn)
    async def handler(self, request, context):
        try:
            return await fn(self, request, context)
        except errors.EtcdError as e:
            e = recipe_error(e)
            await context.abort(e.code, e.message)
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as e:  # never take the server down on a request
            self.server.lg.error("request failed", method=fn.__name__, error=repr(e))
            await context.abort(grpc.StatusCode.INTERNAL, f"pyetcd: internal error: {e!r}")

    return handler
