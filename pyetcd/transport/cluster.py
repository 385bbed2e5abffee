"""fetch_cluster_info: what a member joining an existing cluster asks its future peers.

etcd's --initial-cluster-state=existing start (GetClusterFromRemotePeers) fetches the member
list from any reachable peer; it only needs one answer.
"""
from __future__ import annotations

import grpc

from pyetcd._pb.peerpb import peer_pb2, peer_pb2_grpc

from ._common import CHANNEL_OPTIONS, is_tls_url, rpc_code, rpc_details, url_to_target


class ClusterInfoError(Exception):
    """No peer answered; ``errors`` maps each peer URL to why."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("pyetcd: could not retrieve cluster information from the given URLs: "
                         + "; ".join(f"{u}: {e}" for u, e in errors.items()))
        self.errors = errors


async def fetch_cluster_info(peer_urls: list[str], cluster_token: str | None = None, *,
                             timeout: float = 2.0, local_id: int = 0, tls=None
                             ) -> tuple[int, list[tuple[int, str, list[str], list[str], bool]]]:
    """Ask the peers in turn; return (cluster_id, [(member_id, name, peer_urls, client_urls,
    is_learner)]) from the first that answers. Raises ClusterInfoError if none does. A peer that
    refuses (e.g. cluster token mismatch) counts as not answering, as in etcd. ``tls``: the
    member's peer TLSInfo, used for https peer URLs (see tls.py)."""
    errors: dict[str, str] = {}
    md = (("x-server-from", f"{local_id:016x}"),)
    for url in peer_urls:
        try:
            target = url_to_target(url)
        except ValueError as e:
            errors[url] = str(e)
            continue
        try:
            channel = await _channel(url, target, tls, timeout)
        except (OSError, ValueError) as e:
            errors[url] = str(e)
            continue
        try:
            stub = peer_pb2_grpc.PeerStub(channel)
            resp = await stub.ClusterInfo(peer_pb2.ClusterInfoRequest(cluster_token=cluster_token or ""),
                                          timeout=timeout, metadata=md, wait_for_ready=False)
        except grpc.aio.AioRpcError as e:
            errors[url] = f"{rpc_code(e).name}: {rpc_details(e)}"
            continue
        finally:
            await channel.close()
        members = [(m.id, m.name, list(m.peer_urls), list(m.client_urls), m.is_learner)
                   for m in resp.members]
        return resp.cluster_id, members
    raise ClusterInfoError(errors)


async def _channel(url: str, target: str, tls, timeout: float) -> grpc.aio.Channel:
    if not is_tls_url(url):
        return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
    from .tls import TLSError, TLSInfo, dial

    try:
        return await dial(target, tls or TLSInfo(), timeout, CHANNEL_OPTIONS)
    except TLSError as e:
        raise ValueError(str(e)) from None
