"""Transport: the member's peer endpoint (server + one sender per remote member). See __init__."""
from __future__ import annotations

import asyncio
import concurrent.futures
import tempfile
from typing import Awaitable, Callable

import grpc

from pyetcd._pb.peerpb import peer_pb2, peer_pb2_grpc
from pyetcd.errors import EtcdError, ErrNoLeader, ErrTimeout

from ._common import (CHANNEL_OPTIONS, SERVER_OPTIONS, StdLogger, id_hex, is_tls_url, metadata, rpc_code,
                      rpc_details, url_to_target)
from .peer import Peer
from .server import PeerService
from .snapshot import send_snapshot

MSG_SNAP = 7  # raftpb.MsgSnap


def _noop(*_a) -> None:
    return None


class Transport:
    def __init__(
        self,
        local_id: int,
        cluster_id: int | None,
        *,
        on_messages: Callable[[list], None],
        on_snapshot: Callable[[object, str], Awaitable[None]] | None = None,
        on_unreachable: Callable[[int], None] = _noop,
        on_snapshot_status: Callable[[int, bool], None] = _noop,
        on_removed: Callable[[], None] = _noop,
        snapshot_dir: str | None = None,
        members_provider: Callable[[], tuple[int, list]] | None = None,
        cluster_token: str | None = None,
        lease_renew: Callable[[int], Awaitable[int]] | None = None,
        lease_ttl: Callable[[int, bool], Awaitable[tuple]] | None = None,
        is_removed: Callable[[int], bool] | None = None,
        accept_unknown_peers: bool = False,
        logger=None,
        queue_size: int = 4096,
        batch_max_msgs: int = 1024,
        batch_max_bytes: int = 4 << 20,
        snapshot_chunk_size: int = 1 << 20,
        backoff_min: float = 0.05,
        backoff_max: float = 1.0,
        dial_timeout: float = 2.0,
        unreachable_interval: float = 0.1,
        tls=None,
        check_client_san: bool = True,
    ):
        self.local_id = local_id
        # Settable later (a member joining an existing cluster learns it from its peers).
        self.cluster_id = cluster_id
        self.on_messages = on_messages
        self.on_snapshot = on_snapshot or self._no_snapshot_handler
        self.on_unreachable = on_unreachable
        self.on_snapshot_status = on_snapshot_status
        self.on_removed = on_removed
        self.snapshot_dir = snapshot_dir or tempfile.gettempdir()
        self.members_provider = members_provider
        self.cluster_token = cluster_token
        self.lease_renew = lease_renew
        self.lease_ttl = lease_ttl
        self.is_removed = is_removed
        self.accept_unknown_peers = accept_unknown_peers
        self.logger = logger or StdLogger()
        self.queue_size = queue_size
        self.batch_max_msgs = batch_max_msgs
        self.batch_max_bytes = batch_max_bytes
        self.snapshot_chunk_size = snapshot_chunk_size
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.dial_timeout = dial_timeout
        self.unreachable_interval = unreachable_interval
        # Peer TLS (pyetcd.transport.tls.TLSInfo, or None): serves https listen URLs and dials
        # https peer URLs. check_client_san: refuse a peer whose client certificate does not name
        # the address it connects from (etcd's checkSAN; off with
        # --experimental-peer-skip-client-san-verification).
        self.tls = tls
        self.check_client_san = check_client_san
        self._pins: dict[str, bytes] = {}       # target -> pinned cert of a self-signed peer
        self._pin_names: dict[str, str] = {}    # target -> a name the pinned cert holds
        self._creds: dict[tuple, object] = {}

        self.peers: dict[int, Peer] = {}
        self.received_msgs = 0      # counters, for metrics and tests
        self.received_streams = 0
        self._server: grpc.aio.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._snap_tasks: set[asyncio.Task] = set()
        self._io = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="peer-io")
        self._stopped = False
        self.listen_urls: list[str] = []

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self, listen_peer_urls: list[str]) -> list[str]:
        """Serve the Peer service on every URL; returns the URLs with bound ports (":0" resolved)."""
        server = grpc.aio.server(options=SERVER_OPTIONS)
        peer_pb2_grpc.add_PeerServicer_to_server(PeerService(self), server)
        bound = []
        creds = None
        for url in listen_peer_urls:
            target = url_to_target(url)
            host = target.rsplit(":", 1)[0]
            if is_tls_url(url):
                if self.tls is None or self.tls.empty():
                    raise ValueError(f"cannot listen on TLS for {target}: KeyFile and CertFile are not presented")
                creds = creds or self.tls.server_credentials()
                port = server.add_secure_port(target, creds)
            else:
                port = server.add_insecure_port(target)
            if port == 0:
                raise OSError(f"pyetcd: cannot listen on peer URL {url}")
            bound.append(f"{'https' if is_tls_url(url) else 'http'}://{host}:{port}")
        await server.start()
        self._server = server
        self.listen_urls = bound
        self.logger.info("started peer transport", local_member_id=id_hex(self.local_id),
                         listen_peer_urls=bound)
        return bound

    async def stop(self, grace: float = 0.2) -> None:
        if self._stopped:
            return
        self._stopped = True
        for t in list(self._snap_tasks):
            t.cancel()
        if self._snap_tasks:
            await asyncio.gather(*self._snap_tasks, return_exceptions=True)
        await asyncio.gather(*(p.close() for p in self.peers.values()), return_exceptions=True)
        self.peers.clear()
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._io.shutdown(wait=True)

    # ---- membership ----------------------------------------------------------------------

    def add_peer(self, peer_id: int, peer_urls: list[str]) -> None:
        if peer_id == self.local_id or peer_id in self.peers or self._stopped:
            return
        self.peers[peer_id] = Peer(self, peer_id, peer_urls)
        self.logger.info("added remote peer", remote_peer_id=id_hex(peer_id), remote_peer_urls=peer_urls)

    def update_peer(self, peer_id: int, peer_urls: list[str]) -> None:
        p = self.peers.get(peer_id)
        if p is None:
            self.add_peer(peer_id, peer_urls)
            return
        p.update_urls(peer_urls)
        self.logger.info("updated remote peer", remote_peer_id=id_hex(peer_id), remote_peer_urls=peer_urls)

    def remove_peer(self, peer_id: int) -> None:
        p = self.peers.pop(peer_id, None)
        if p is not None:
            self._spawn(p.close())
            self.logger.info("removed remote peer", remote_peer_id=id_hex(peer_id))

    # ---- dialing -------------------------------------------------------------------------

    def channel(self, url: str) -> grpc.aio.Channel:
        """A channel to a peer URL: TLS for https (see tls.py), plain for http."""
        target = url_to_target(url)
        if not is_tls_url(url):
            return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        from .tls import TLSInfo

        info = self.tls or TLSInfo()
        pin = self._pins.get(target) if info.self_cert else None
        key = (target, pin)
        creds = self._creds.get(key)
        if creds is None:
            creds = self._creds[key] = info.channel_credentials(pinned=pin)
        options = list(CHANNEL_OPTIONS)
        if pin is not None and target in self._pin_names:
            options.append(("grpc.ssl_target_name_override", self._pin_names[target]))
        return grpc.aio.secure_channel(target, creds, options=options)

    async def prepare_dial(self, url: str, refresh: bool = False) -> None:
        """With self-signed peer certs (--peer-auto-tls), fetch and pin the peer's certificate
        before dialing it: etcd skips verification of such peers, grpcio cannot."""
        if not (is_tls_url(url) and self.tls is not None and self.tls.self_cert):
            return
        target = url_to_target(url)
        if target in self._pins and not refresh:
            return
        from .tls import pin_server_cert

        host, port = target.rsplit(":", 1)
        try:
            pem, name = await asyncio.get_running_loop().run_in_executor(
                self._io, pin_server_cert, host.strip("[]"), int(port), self.dial_timeout)
        except (OSError, ValueError) as e:
            self.logger.debug("cannot fetch the peer's certificate", url=url, error=str(e))
            return
        self._pins[target] = pem
        if name:
            self._pin_names[target] = name

    def pinned(self, url: str):
        """What a channel to url trusts now (changes when a self-signed peer is pinned again)."""
        return self._pins.get(url_to_target(url))

    def active_since(self, peer_id: int) -> float | None:
        p = self.peers.get(peer_id)
        return p.active_since if p is not None else None

    # ---- sending -------------------------------------------------------------------------

    def send(self, msgs) -> None:
        """Queue messages for their peers (m.to). Never blocks or raises; drops when it must."""
        peers = self.peers
        for m in msgs:
            p = peers.get(m.to)
            if p is None:
                if m.to != 0 and not self._stopped:
                    self.logger.debug("ignored message send request; unknown remote peer target",
                                      remote_peer_id=id_hex(m.to), type=m.type)
                continue
            if m.type == MSG_SNAP:
                # A MsgSnap needs its database: it must come through send_snapshot.
                self.logger.warn("MsgSnap given to send() without a database; use send_snapshot",
                                 remote_peer_id=id_hex(m.to))
                self._call_snapshot_status(m.to, True)
                continue
            p.enqueue(m)

    def send_snapshot(self, msg, db_path: str) -> None:
        """Send a MsgSnap and the backend file at db_path; on_snapshot_status(msg.to, failed) follows."""
        p = self.peers.get(msg.to)
        if p is None or self._stopped:
            self.logger.warn("ignored snapshot send request; unknown remote peer target",
                             remote_peer_id=id_hex(msg.to))
            self._call_snapshot_status(msg.to, True)
            return
        task = asyncio.get_running_loop().create_task(send_snapshot(self, p, msg, db_path))
        self._snap_tasks.add(task)
        task.add_done_callback(self._snap_tasks.discard)

    async def forward_lease_renew(self, leader_id: int, lease_id: int, timeout: float = 5.0) -> int:
        """Ask the leader to renew a lease; returns the TTL. Raises EtcdError (the leader's own
        error, e.g. ErrLeaseNotFound, or ErrNoLeader / ErrTimeout when it cannot be reached)."""
        resp = await self._ask_leader(leader_id, "LeaseRenew", peer_pb2.LeaseRenewRequest(lease_id=lease_id),
                                      timeout)
        return resp.ttl

    async def forward_lease_ttl(self, leader_id: int, lease_id: int, keys: bool,
                                timeout: float = 5.0) -> tuple[int, int, list[bytes]]:
        """Ask the leader for a lease's (remaining TTL, granted TTL, keys); errors as above."""
        resp = await self._ask_leader(leader_id, "LeaseTimeToLive",
                                      peer_pb2.LeaseTimeToLiveRequest(lease_id=lease_id, keys=keys), timeout)
        return resp.ttl, resp.granted_ttl, list(resp.keys)

    async def _ask_leader(self, leader_id: int, method: str, request, timeout: float):
        p = self.peers.get(leader_id)
        if p is None:
            raise ErrNoLeader
        call = getattr(peer_pb2_grpc.PeerStub(p.channel()), method)
        try:
            return await call(request, timeout=timeout, metadata=metadata(self.cluster_id, self.local_id, leader_id))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise ErrNoLeader from None  # the connection was replaced under the call
        except grpc.aio.AioRpcError as e:
            code = rpc_code(e)
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ErrTimeout from None
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED) and \
                    not rpc_details(e).startswith("etcdserver:"):
                raise ErrNoLeader from None
            raise EtcdError(code, rpc_details(e)) from None

    # ---- callbacks (never let one take the transport down) -------------------------------

    def _call_unreachable(self, peer_id: int) -> None:
        try:
            self.on_unreachable(peer_id)
        except Exception as exc:  # noqa: BLE001
            self.logger.error("on_unreachable failed", error=repr(exc))

    def _call_snapshot_status(self, peer_id: int, failed: bool) -> None:
        try:
            self.on_snapshot_status(peer_id, failed)
        except Exception as exc:  # noqa: BLE001
            self.logger.error("on_snapshot_status failed", error=repr(exc))

    def _call_removed(self) -> None:
        try:
            self.on_removed()
        except Exception as exc:  # noqa: BLE001
            self.logger.error("on_removed failed", error=repr(exc))

    async def _no_snapshot_handler(self, msg, path: str) -> None:
        raise RuntimeError("this member does not accept snapshots (no on_snapshot given)")

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
