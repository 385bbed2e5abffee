"""The receiving side: the Peer gRPC service every member serves on its peer URLs.

Identity checks follow etcd's rafthttp handlers (checkClusterCompatibilityFromHeader and the
X-Raft-To check): another cluster id or another addressee is refused with FAILED_PRECONDITION,
a sender this member does not know with NOT_FOUND, a sender known to be removed with
PERMISSION_DENIED. Each refusal is logged, since it usually means a misconfigured member.
Over TLS, a peer whose client certificate does not name the address it connects from is refused
with UNAUTHENTICATED and logged as etcd logs it ("rejected connection"): etcd's checkSAN, which
etcd runs on the connection, is run here on each call.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import grpc

from pyetcd._pb.peerpb import peer_pb2, peer_pb2_grpc
from pyetcd.errors import EtcdError

from ._common import MD_CLUSTER_ID, MD_FROM, MD_TO, id_hex, parse_metadata
from .snapshot import receive_snapshot

if TYPE_CHECKING:  # pragma: no cover
    from .transport import Transport


class PeerService(peer_pb2_grpc.PeerServicer):
    def __init__(self, transport: "Transport"):
        self.t = transport
        self._refusal_logged: dict[tuple, float] = {}

    # ---- identity ------------------------------------------------------------------------

    async def _check(self, context, *, need_to: bool = True, need_known: bool = True) -> int:
        """Return the sender's member id, or abort the call."""
        t = self.t
        await self._check_san(context)
        md = parse_metadata(context.invocation_metadata())
        from_id = md.get(MD_FROM)
        if from_id is None:
            await self._refuse(context, grpc.StatusCode.INVALID_ARGUMENT, 0,
                               f"pyetcd: missing or malformed {MD_FROM} metadata")
        cid = md.get(MD_CLUSTER_ID)
        if t.cluster_id is not None and cid != t.cluster_id:
            await self._refuse(
                context, grpc.StatusCode.FAILED_PRECONDITION, from_id,
                f"pyetcd: cluster ID mismatch (local {id_hex(t.cluster_id)}, "
                f"remote {id_hex(cid) if cid is not None else 'unset'})")
        if need_to:
            to = md.get(MD_TO)
            if to != t.local_id:
                await self._refuse(
                    context, grpc.StatusCode.FAILED_PRECONDITION, from_id,
                    f"pyetcd: raft message to field mismatch (local member {id_hex(t.local_id)}, "
                    f"message for {id_hex(to) if to is not None else 'unset'})")
        if t.is_removed is not None and t.is_removed(from_id):
            await self._refuse(context, grpc.StatusCode.PERMISSION_DENIED, from_id,
                               "pyetcd: the member has been permanently removed from the cluster")
        if need_known and not t.accept_unknown_peers and from_id not in t.peers:
            await self._refuse(context, grpc.StatusCode.NOT_FOUND, from_id,
                               f"pyetcd: sender {id_hex(from_id)} is not a known peer")
        return from_id

    async def _check_san(self, context) -> None:
        t = self.t
        if t.tls is None or not t.check_client_san:
            return
        auth = context.auth_context()
        if auth.get("transport_security_type") != [b"ssl"]:
            return
        ips = [v.decode() for v in auth.get("peer_ip", ())]
        dns = [v.decode() for v in auth.get("peer_dns", ())]
        if not ips and not dns:
            return
        addr = context.peer()  # "ipv4:127.0.0.1:50102" / "ipv6:[::1]:50102"
        host = addr.split(":", 1)[-1].rsplit(":", 1)[0].strip("[]")
        from .tls import check_cert_san

        err = await check_cert_san(host, ips, dns)
        if err is None:
            return
        key = ("san", addr.rsplit(":", 1)[0])
        now = time.monotonic()
        if now - self._refusal_logged.get(key, float("-inf")) >= 1.0:
            self._refusal_logged[key] = now
            t.logger.warn("rejected connection", **{"remote-addr": addr.split(":", 1)[-1], "server-name": "",
                                                    "ip-addresses": ips, "dns-names": dns, "error": err})
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"pyetcd: {err}")

    async def _refuse(self, context, code, from_id: int, message: str):
        # Log each kind of refusal per sender at most once a second: a misconfigured peer
        # retries every backoff period and would flood the log.
        key = (code, from_id)
        now = time.monotonic()
        if now - self._refusal_logged.get(key, float("-inf")) >= 1.0:
            self._refusal_logged[key] = now
            self.t.logger.warn("refused peer request", remote_peer_id=id_hex(from_id),
                               local_member_id=id_hex(self.t.local_id), code=code.name, error=message)
        await context.abort(code, message)

    # ---- RPCs ----------------------------------------------------------------------------

    async def Stream(self, request_iterator, context):
        t = self.t
        from_id = await self._check(context)
        # Tells the sender its stream was accepted (it then counts the peer as active).
        await context.send_initial_metadata(())
        t.received_streams += 1
        # A sender opens a new stream only after cancelling its old one, and a half-open old
        # stream is ended by the server's keepalive, so one sender has one live stream.
        async for batch in request_iterator:
            msgs = list(batch.msgs)
            t.received_msgs += len(msgs)
            try:
                t.on_messages(msgs)  # looked up per batch: the server may swap the callback
            except Exception as exc:  # noqa: BLE001 - a bad callback must not kill the stream
                t.logger.error("on_messages failed", remote_peer_id=id_hex(from_id), error=repr(exc))
        return peer_pb2.StreamAck()

    async def Snapshot(self, request_iterator, context):
        from_id = await self._check(context)
        return await receive_snapshot(self.t, from_id, request_iterator, context)

    async def ClusterInfo(self, request, context):
        t = self.t
        await self._check_san(context)
        md = parse_metadata(context.invocation_metadata())
        cid = md.get(MD_CLUSTER_ID)
        # A joining member does not know the cluster id yet; one that sends it must match.
        if cid is not None and t.cluster_id is not None and cid != t.cluster_id:
            await self._refuse(context, grpc.StatusCode.FAILED_PRECONDITION, md.get(MD_FROM, 0),
                               f"pyetcd: cluster ID mismatch (local {id_hex(t.cluster_id)}, "
                               f"remote {id_hex(cid)})")
        if request.cluster_token and t.cluster_token and request.cluster_token != t.cluster_token:
            await self._refuse(context, grpc.StatusCode.FAILED_PRECONDITION, md.get(MD_FROM, 0),
                               "pyetcd: cluster token mismatch")
        if t.members_provider is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "pyetcd: member list is not available")
        try:
            cluster_id, members = t.members_provider()
        except Exception as exc:  # noqa: BLE001
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"pyetcd: member list is not available: {exc}")
        resp = peer_pb2.ClusterInfoResponse(cluster_id=cluster_id)
        for m in members:
            mid, name, peer_urls, client_urls, is_learner = m
            resp.members.add(id=mid, name=name, peer_urls=list(peer_urls),
                             client_urls=list(client_urls), is_learner=bool(is_learner))
        return resp

    async def LeaseRenew(self, request, context):
        ttl = await self._lease_hook(context, "lease_renew", request.lease_id)
        return peer_pb2.LeaseRenewResponse(ttl=ttl)

    async def LeaseTimeToLive(self, request, context):
        ttl, granted, keys = await self._lease_hook(context, "lease_ttl", request.lease_id, request.keys)
        return peer_pb2.LeaseTimeToLiveResponse(ttl=ttl, granted_ttl=granted, keys=keys)

    async def _lease_hook(self, context, name: str, lease_id: int, *args):
        """Run a lease hook of the transport for a peer; its EtcdError goes back as the status."""
        t = self.t
        await self._check(context)
        hook = getattr(t, name)
        if hook is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "pyetcd: lease forwarding is not enabled")
        try:
            return await hook(lease_id, *args)
        except EtcdError as e:
            await context.abort(e.code, e.message)
        except Exception as exc:  # noqa: BLE001
            t.logger.error(f"{name} hook failed", lease_id=lease_id, error=repr(exc))
            await context.abort(grpc.StatusCode.UNKNOWN, f"pyetcd: {name} failed: {exc}")
