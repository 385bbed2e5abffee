"""Transport: the member's peer endpoint (server + one sender per remote member). See __init__."""
from __future__ import annotations

import asyncio
import concurrent.futures
import tempfile
from typing import Awaitable, Callable

import grpc

from pyetcd._pb.peerpb import peer_pb2, peer_pb2_grpc
from pyetcd.errors import EtcdError, ErrNoLeader, ErrTimeout

from ._common import SERVER_OPTIONS, StdLogger, id_hex, metadata, rpc_code, rpc_details, url_to_target
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
        for url in listen_peer_urls:
            target = url_to_target(url)
            host = target.rsplit(":", 1)[0]
            port = server.add_insecure_port(target)
            if port == 0:
                raise OSError(f"pyetcd: cannot listen on peer URL {url}")
            bound.append(f"http://{host}:{port}")
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
