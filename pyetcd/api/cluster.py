"""etcdserverpb.Cluster: MemberList; membership changes arrive with the clustering issue."""
from __future__ import annotations

from pyetcd.pb import rpc, rpc_grpc

from .base import Service, unary, unimplemented_methods


def member_pb(m) -> rpc.Member:
    return rpc.Member(ID=m.id, name=m.name, peerURLs=m.peer_urls, clientURLs=m.client_urls,
                      isLearner=m.is_learner)


class ClusterService(Service, rpc_grpc.ClusterServicer):
    @unary
    async def MemberList(self, request, context):
        return rpc.MemberListResponse(members=[member_pb(m) for m in self.server.members])


unimplemented_methods(ClusterService, ["MemberAdd", "MemberRemove", "MemberUpdate", "MemberPromote"],
                      "Cluster")
