"""etcdserverpb.Cluster: member list, add (voter or learner), remove, update, promote."""
from __future__ import annotations

import time

from pyetcd import errors
from pyetcd.pb import raftpb, rpc, rpc_grpc
from pyetcd.server import ids
from pyetcd.server.config import parse_urls
from pyetcd.server.membership import MemberInfo

from .base import Service, unary

# etcd: a learner may be promoted once its log reaches 90% of the leader's.
LEARNER_READY_PERCENT = 0.9
MAX_LEARNERS = 1


def member_pb(m) -> rpc.Member:
    return rpc.Member(ID=m.id, name=m.name, peerURLs=m.peer_urls, clientURLs=m.client_urls,
                      isLearner=m.is_learner)


class ClusterService(Service, rpc_grpc.ClusterServicer):
    def _members(self):
        return [member_pb(m) for m in self.server.members]

    @unary
    async def MemberList(self, request, context):
        if request.linearizable:
            await self.server.linearizable_read()
        return rpc.MemberListResponse(members=self._members())

    @unary
    async def MemberAdd(self, request, context):
        s = self.server
        try:
            urls = parse_urls(",".join(request.peerURLs))
        except ValueError:
            raise errors.ErrMemberBadURLs from None
        if not urls:
            raise errors.ErrMemberBadURLs
        if request.isLearner and sum(m.is_learner for m in s.members) >= MAX_LEARNERS:
            raise errors.ErrTooManyLearners
        m = MemberInfo(ids.member_id(urls, s.cfg.initial_cluster_token, int(time.time())), "", urls,
                       [], request.isLearner)
        cc = raftpb.ConfChange(type=raftpb.ConfChangeAddLearnerNode if request.isLearner
                               else raftpb.ConfChangeAddNode, node_id=m.id, context=m.encode())
        added = await s.propose_conf_change(cc)
        return rpc.MemberAddResponse(member=member_pb(added or m), members=self._members())

    @unary
    async def MemberRemove(self, request, context):
        s = self.server
        await s.propose_conf_change(raftpb.ConfChange(type=raftpb.ConfChangeRemoveNode,
                                                      node_id=request.ID))
        return rpc.MemberRemoveResponse(members=self._members())

    @unary
    async def MemberUpdate(self, request, context):
        s = self.server
        try:
            urls = parse_urls(",".join(request.peerURLs))
        except ValueError:
            raise errors.ErrMemberBadURLs from None
        old = s.membership.members.get(request.ID)
        if old is None:
            raise errors.ErrMemberNotFound
        m = MemberInfo(request.ID, old.name, urls, old.client_urls, old.is_learner)
        await s.propose_conf_change(raftpb.ConfChange(type=raftpb.ConfChangeUpdateNode,
                                                      node_id=request.ID, context=m.encode()))
        return rpc.MemberUpdateResponse(members=self._members())

    @unary
    async def MemberPromote(self, request, context):
        s = self.server
        m = s.membership.members.get(request.ID)
        if m is None:
            raise errors.ErrMemberNotFound
        if not m.is_learner:
            raise errors.ErrMemberNotLearner
        if not s.is_leader:
            raise errors.ErrNotLeader
        progress = s.raft.status().progress
        leader_match = progress.get(s.member_id, (0,))[0]
        learner_match = progress.get(request.ID, (0,))[0]
        if leader_match == 0 or learner_match < leader_match * LEARNER_READY_PERCENT:
            raise errors.ErrLearnerNotReady
        await s.propose_conf_change(raftpb.ConfChange(type=raftpb.ConfChangeAddNode, node_id=request.ID,
                                                      context=m.encode()))
        return rpc.MemberPromoteResponse(members=self._members())
