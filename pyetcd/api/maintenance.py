"""etcdserverpb.Maintenance for one member: Status, HashKV, Alarm (get), Defragment, MoveLeader."""
from __future__ import annotations

from pyetcd import ETCD_VERSION, errors
from pyetcd.pb import rpc, rpc_grpc

from .base import Service, unary, unimplemented_methods


class MaintenanceService(Service, rpc_grpc.MaintenanceServicer):
    @unary
    async def Status(self, request, context):
        s = self.server
        return rpc.StatusResponse(
            version=ETCD_VERSION, dbSize=s.backend.size(), dbSizeInUse=s.backend.size_in_use(),
            leader=s.member_id, raftIndex=s.last_index, raftTerm=s.term,
            raftAppliedIndex=s.applied_index)

    @unary
    async def HashKV(self, request, context):
        h, rev, compact_rev = self.server.kv.hash_kv(request.revision)
        resp = rpc.HashKVResponse(hash=h, compact_revision=compact_rev)
        resp.header.revision = rev
        return resp

    @unary
    async def Alarm(self, request, context):
        if request.action != rpc.AlarmRequest.GET:
            raise errors.unimplemented("activating or deactivating alarms")
        return rpc.AlarmResponse()  # no alarm is ever raised yet (no quota enforcement)

    @unary
    async def Defragment(self, request, context):
        self.server.backend.defrag()
        return rpc.DefragmentResponse()

    @unary
    async def MoveLeader(self, request, context):
        s = self.server
        if all(m.id != request.targetID for m in s.members):
            raise errors.ErrBadLeaderTransferee
        return rpc.MoveLeaderResponse()  # a single member already leads


unimplemented_methods(MaintenanceService, ["Hash", "Snapshot", "Downgrade"], "Maintenance")
