"""v3electionpb.Election (etcd server/etcdserver/api/v3election): leader election on leases.

Each call runs clientv3/concurrency's Election on this member (see ``concurrency``), as etcd
3.5.1's election server does through its loopback client:

- Campaign blocks until the candidate's key ``<name>/<lease hex>`` is the oldest under
  ``<name>/``; it answers with the header of its first Txn and the LeaderKey (name, key, the
  key's create revision, lease). Cancelled while waiting, it resigns.
- Proclaim puts a new value if the key still has the LeaderKey's create revision, else fails
  with "election: not leader". Resign deletes it under the same condition; a Resign that is
  not the leader's succeeds and changes nothing.
- Leader answers the oldest key ("election: no leader" if none); Observe streams it and each
  change to it, until the client goes away.
- Proclaim/Resign without a ``leader`` fail with ``"leader" field must be provided``.
Every failure has gRPC code UNKNOWN with etcd's text (``concurrency.recipe_error``).
"""
from __future__ import annotations

import asyncio
from contextlib import aclosing

import grpc

from pyetcd.pb import v3election, v3election_grpc

from .base import Service
from .concurrency import ErrMissingLeaderKey, unary_recipe


class ElectionService(Service, v3election_grpc.ElectionServicer):
    def __init__(self, server, client):
        super().__init__(server)
        self.client = client  # concurrency.LocalClient

    @unary_recipe
    async def Campaign(self, request, context):
        header, key, rev, lease = await self.client.campaign(request.name, request.lease, request.value)
        return v3election.CampaignResponse(header=header, leader=v3election.LeaderKey(
            name=request.name, key=key, rev=rev, lease=lease))

    @unary_recipe
    async def Proclaim(self, request, context):
        if not request.HasField("leader"):
            raise ErrMissingLeaderKey
        ld = request.leader
        lease = await self.client.session_lease(ld.lease)
        header = await self.client.proclaim(ld.key, ld.rev, lease, request.value)
        return v3election.ProclaimResponse(header=header)

    @unary_recipe
    async def Resign(self, request, context):
        if not request.HasField("leader"):
            raise ErrMissingLeaderKey
        ld = request.leader
        await self.client.session_lease(ld.lease)  # lease 0: etcd's session grants one here too
        header = await self.client.resign(ld.key, ld.rev)
        return v3election.ResignResponse(header=header)

    @unary_recipe
    async def Leader(self, request, context):
        resp = await self.client.leader(request.name)
        return v3election.LeaderResponse(header=resp.header, kv=resp.kvs[0])

    async def Observe(self, request, context):
        try:
            async with aclosing(self.client.observe(request.name)) as leaders:
                async for header, kv in leaders:
                    yield v3election.LeaderResponse(header=header, kv=kv)
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as e:  # a bug must not take the server down
            self.server.lg.error("election observe failed", error=repr(e))
            await context.abort(grpc.StatusCode.INTERNAL, f"pyetcd: internal error: {e!r}")
