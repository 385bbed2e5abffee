"""etcdserverpb.Maintenance: Status, HashKV, Alarm (get), Defragment, MoveLeader."""
from __future__ import annotations

import asyncio
import time

from pyetcd import ETCD_VERSION, errors
from pyetcd.pb import rpc, rpc_grpc

from .base import Service, unary, unimplemented_methods

ErrTimeoutLeaderTransfer = errors.EtcdError(errors.ErrTimeout.code,
                                            "etcdserver: request timed out, leader transfer took too long")


class MaintenanceService(Service, rpc_grpc.MaintenanceServicer):
    @unary
    async def Status(self, request, context):
        s = self.server
        resp = rpc.StatusResponse(
            version=ETCD_VERSION, dbSize=s.backend.size(), dbSizeInUse=s.backend.size_in_use(),
            leader=s.leader_id, raftIndex=s.last_index, raftTerm=s.term,
            raftAppliedIndex=s.applied_index, isLearner=s.is_learner)
        if s.leader_id == 0:
            resp.errors.append(errors.ErrNoLeader.message.removeprefix("etcdserver: "))
        return resp

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
        if not s.is_leader:
            raise errors.ErrNotLeader
        target = s.membership.members.get(request.targetID)
        if target is None or target.is_learner:
            raise errors.ErrBadLeaderTransferee
        if request.targetID != s.member_id:
            s.raft.transfer_leadership(request.targetID)
            deadline = time.monotonic() + s.request_timeout
            while s.leader_id != request.targetID:
                if time.monotonic() > deadline:
                    raise ErrTimeoutLeaderTransfer
                await asyncio.sleep(s.cfg.heartbeat_interval / 1000)
        return rpc.MoveLeaderResponse()


unimplemented_methods(MaintenanceService, ["Hash", "Snapshot", "Downgrade"], "Maintenance")
