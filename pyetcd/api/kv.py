"""etcdserverpb.KV: Range, Put, DeleteRange, Txn, Compact."""
from __future__ import annotations

from pyetcd.pb import raft_internal, rpc_grpc
from pyetcd.server.alarms import refuse_over_quota
from pyetcd.server.apply import check

from .base import Service, unary


class KVService(Service, rpc_grpc.KVServicer):
    @unary
    async def Range(self, request, context):
        check.check_range(request)
        if not request.serializable:
            await self.server.linearizable_read()
        return self.server.applier.range(request)

    @unary
    async def Put(self, request, context):
        if not self.server.quota.available(request):  # etcd checks the quota first, then the request
            await refuse_over_quota(self.server)
        check.check_put(request)
        return await self.server.propose(raft_internal.InternalRaftRequest(put=request))

    @unary
    async def DeleteRange(self, request, context):
        check.check_delete(request)
        return await self.server.propose(raft_internal.InternalRaftRequest(delete_range=request))

    @unary
    async def Txn(self, request, context):
        if not self.server.quota.available(request):  # read-only txns too, as etcd's quotaKVServer
            await refuse_over_quota(self.server)
        check.check_txn(request, self.server.cfg.max_txn_ops)
        if check.is_txn_readonly(request):
            if not check.is_txn_serializable(request):
                await self.server.linearizable_read()
            return self.server.read_txn(request)
        return await self.server.propose(raft_internal.InternalRaftRequest(txn=request))

    @unary
    async def Compact(self, request, context):
        # Compaction is synchronous here, so `physical` needs no extra wait.
        return await self.server.propose(raft_internal.InternalRaftRequest(compaction=request))
