"""etcdserverpb.Cluster: member list, add (voter or learner), remove, update, promote."""
from __future__ import annotations

import time

from pyetcd import errors
from pyetcd.pb import raftpb, rpc, rpc_grpc
from pyetcd.server import ids
from pyetcd.server.config import parse_urls
from pyetcd.server import membership as ms
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

    def _strict(self) -> bool:
        return self.server.cfg.strict_reconfig_check

    def _connected(self, members) -> int:
        s = self.server
        if s.transport is None:
            return len([m for m in members if m.id == s.member_id])
        return ms.connected_since(s.transport.active_since, s.member_id, members,
                                  time.time() - ms.HEALTH_INTERVAL)

    def _may_add(self, is_learner: bool) -> None:
        if not self._strict():
            return
        members = self.server.members
        if not is_learner and not ms.ready_to_add_voter(members):
            raise errors.ErrMemberNotEnoughStarted
        voters = [m for m in members if not m.is_learner]
        if self._connected(voters) < len(voters):
            raise errors.ErrUnhealthy

    def _may_remove(self, member_id: int) -> None:
        if not self._strict():
            return
        s = self.server
        m = s.membership.members.get(member_id)
        if m is None or m.is_learner:
            return
        members = s.members
        if not ms.ready_to_remove_voter(members, member_id):
            raise errors.ErrMemberNotEnoughStarted
        if member_id != s.member_id and s.transport is not None and s.transport.active_since(member_id) is None:
            return  # a member that is down is not part of the active quorum
        voters = [x for x in members if not x.is_learner]
        if self._connected(voters) - 1 < 1 + (len(voters) - 1) // 2:
            raise errors.ErrUnhealthy

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
        if s.membership.peer_urls_in_use(urls):
            raise errors.ErrPeerURLExist
        self._may_add(request.isLearner)
        m = MemberInfo(ids.member_id(urls, s.cfg.initial_cluster_token, int(time.time())), "", urls,
                       [], request.isLearner)
        cc = raftpb.ConfChange(type=raftpb.ConfChangeAddLearnerNode if request.isLearner
                               else raftpb.ConfChangeAddNode, node_id=m.id, context=m.encode())
        added = await s.propose_conf_change(cc)
        return rpc.MemberAddResponse(member=member_pb(added or m), members=self._members())

    @unary
    async def MemberRemove(self, request, context):
        s = self.server
        self._may_remove(request.ID)
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
        if not s.is_leader:
            return await self._forward_promote(request)
        progress = s.raft.status().progress
        if request.ID in progress:  # etcd's isLearnerReady: within 90% of the leader's log
            leader_match = progress.get(s.member_id, (0,))[0]
            if progress[request.ID][0] < leader_match * LEARNER_READY_PERCENT:
                raise errors.ErrLearnerNotReady
        if self._strict() and not ms.ready_to_promote(s.members):
            raise errors.ErrMemberNotEnoughStarted
        m = s.membership.members.get(request.ID)
        if m is None:
            raise errors.ErrMemberNotFound
        if not m.is_learner:
            raise errors.ErrMemberNotLearner
        await s.propose_conf_change(raftpb.ConfChange(type=raftpb.ConfChangeAddNode, node_id=request.ID,
                                                      context=m.encode()))
        return rpc.MemberPromoteResponse(members=self._members())

    async def _forward_promote(self, request):
        """Only the leader knows whether a learner is in sync: ask it (etcd forwards too)."""
        import grpc

        s = self.server
        leader = s.membership.members.get(s.leader_id)
        if leader is None or not leader.client_urls:
            raise errors.ErrNoLeader
        url = leader.client_urls[0]
        target = url.split("://", 1)[-1]
        if url.startswith("https://"):  # our client cert and trusted CA, as etcd's own clients
            from pyetcd.transport.tls import TLSInfo, dial

            ch = await dial(target, getattr(s, "client_tls", None) or TLSInfo())
        else:
            ch = grpc.aio.insecure_channel(target)
        async with ch:
            try:
                return await rpc_grpc.ClusterStub(ch).MemberPromote(request, timeout=s.request_timeout)
            except grpc.aio.AioRpcError as e:
                raise errors.EtcdError(e.code(), e.details()) from None
