"""The sending side towards one remote member: a bounded ordered queue and one long-lived stream.

Like etcd's rafthttp peer/streamWriter: messages for a peer are written in order on a single
stream; whatever is queued when the writer wakes goes out as one batch (one gRPC write). While
the peer cannot be reached its messages are dropped, not buffered: Raft retransmits, and a
stale backlog delivered after a long outage only costs the peer work.
"""
from __future__ import annotations

import asyncio
import collections
import time
from typing import TYPE_CHECKING

import grpc

from pyetcd._pb.peerpb import peer_pb2, peer_pb2_grpc

from ._common import id_hex, metadata, rpc_code, rpc_details, url_to_target

if TYPE_CHECKING:  # pragma: no cover
    from .transport import Transport


class StreamClosed(Exception):
    """The receiver ended the stream without an error (e.g. it is shutting down)."""


class Peer:
    """One remote member. Owned by Transport; every method runs on the event loop.

    Invariants: ``queue`` holds at most ``transport.queue_size`` messages, all addressed to this
    peer, in the order ``send`` got them; ``active_since`` is set only while a stream that the
    peer accepted (it answered with initial metadata) is open; ``down`` is True from a failed
    connection attempt until the next accepted stream, and while it is True ``enqueue`` drops.
    """

    def __init__(self, transport: "Transport", peer_id: int, urls: list[str]):
        self.t = transport
        self.id = peer_id
        self.urls = list(urls)
        if not urls:
            raise ValueError(f"peer {id_hex(peer_id)} needs at least one peer URL")
        self._targets = [url_to_target(u) for u in self.urls]  # validates before anything starts
        self._url_idx = 0
        self.queue: collections.deque = collections.deque()
        self.wake = asyncio.Event()
        self.active_since: float | None = None
        self.down = False
        self.dropped = 0        # messages dropped since the peer was added (for logs/metrics)
        self.sent = 0           # messages written on a stream
        self.batches = 0        # gRPC writes
        self._last_unreachable = float("-inf")
        self._closed = False
        self._channel: grpc.aio.Channel | None = None
        self._channel_target: str | None = None
        self._channel_key: tuple | None = None  # (url, pinned cert): what _channel dials and trusts
        self._reconnect = False  # update_peer asked for a new connection
        self._call = None
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"peer-{id_hex(peer_id)}")

    # ---- called by Transport -------------------------------------------------------------

    def enqueue(self, msg) -> None:
        if self.down:
            self._drop(1, "peer unreachable")
            return
        if len(self.queue) >= self.t.queue_size:
            self._drop(1, "sending buffer is full")
            return
        self.queue.append(msg)
        self.wake.set()

    def update_urls(self, urls: list[str]) -> None:
        if not urls:
            raise ValueError(f"peer {id_hex(self.id)} needs at least one peer URL")
        targets = [url_to_target(u) for u in urls]
        self.urls = list(urls)
        self._targets = targets
        self._url_idx = 0
        if self._channel_key is None or self._channel_key[0] not in urls:
            self._reconnect = True
            if self._call is not None:
                self._call.cancel()
            self.wake.set()

    def channel(self) -> grpc.aio.Channel:
        """The peer's (shared) channel for the raft stream and small unary calls."""
        url = self._url()
        key = (url, self.t.pinned(url))
        if self._channel is None or self._channel_key != key:
            old = self._channel
            self._channel = self.t.channel(url)
            self._channel_target = url_to_target(url)
            self._channel_key = key
            if old is not None:
                # Let in-flight unary calls (lease forwards) on the old connection finish.
                self.t._spawn(old.close(grace=self.t.dial_timeout))
        return self._channel

    def snapshot_channel(self) -> grpc.aio.Channel:
        """A new channel (own TCP connection) for one snapshot transfer; the caller closes it."""
        return self.t.channel(self._url())

    def _url(self) -> str:
        return self.urls[self._url_idx % len(self.urls)]

    async def close(self) -> None:
        self._closed = True
        self.wake.set()
        self.task.cancel()
        try:
            await self.task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass
        self.active_since = None
        self.queue.clear()
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    def report_unreachable(self, force: bool = False) -> bool:
        now = time.monotonic()
        if not force and now - self._last_unreachable < self.t.unreachable_interval:
            return False
        self._last_unreachable = now
        self.t._call_unreachable(self.id)
        return True

    # ---- internals -----------------------------------------------------------------------

    def _drop(self, n: int, why: str) -> None:
        # Logged once per unreachable report (not per message: a down peer drops thousands).
        self.dropped += n
        if self.report_unreachable():
            log = self.t.logger.warn if why == "sending buffer is full" else self.t.logger.debug
            log("dropped internal Raft message", remote_peer_id=id_hex(self.id), reason=why,
                dropped_total=self.dropped)

    def _take_batch(self) -> list:
        q = self.queue
        t = self.t
        if len(q) <= t.batch_max_msgs:
            # Common case: everything queued fits the count cap; check bytes only for big ones.
            batch = list(q)
            q.clear()
        else:
            batch = [q.popleft() for _ in range(t.batch_max_msgs)]
        if len(batch) > 1 and any(m.entries or m.snapshot.data for m in batch):
            # MsgApps can be large: keep a single write under batch_max_bytes (at least one msg).
            size = 0
            for i, m in enumerate(batch):
                size += m.ByteSize()
                if size > t.batch_max_bytes and i > 0:
                    q.extendleft(reversed(batch[i:]))
                    batch = batch[:i]
                    break
        return batch

    async def _run(self) -> None:
        t = self.t
        backoff = t.backoff_min
        while not self._closed:
            call = None
            try:
                await t.prepare_dial(self._url(), refresh=self.down)
                stub = peer_pb2_grpc.PeerStub(self.channel())
                call = stub.Stream(metadata=metadata(t.cluster_id, t.local_id, self.id),
                                   wait_for_ready=False)
                self._call = call
                # The receiver sends initial metadata only after its identity checks pass.
                await asyncio.wait_for(call.initial_metadata(), t.dial_timeout)
                if call.done():
                    await call  # raises the refusal (or UNAVAILABLE)
                    raise StreamClosed()
                self.active_since = time.time()
                self.down = False
                backoff = t.backoff_min
                t.logger.info("peer became active", remote_peer_id=id_hex(self.id),
                              url=self._channel_target)
                call.add_done_callback(lambda _c: self.wake.set())
                while True:
                    if not self.queue and not self._closed:
                        self.wake.clear()
                        await self.wake.wait()
                    if self._closed:
                        # close() cancels this task, but Python 3.11's wait_for loses a
                        # cancellation that meets the stream's first answer; close() also wakes us.
                        raise asyncio.CancelledError()
                    if call.done() or self._reconnect:
                        if self._reconnect:
                            raise StreamClosed()
                        await call
                        raise StreamClosed()
                    if not self.queue:
                        continue
                    batch = self._take_batch()
                    await call.write(peer_pb2.MessageBatch(msgs=batch))
                    self.sent += len(batch)
                    self.batches += 1
            except asyncio.CancelledError:
                if call is not None:
                    call.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - every failure means: reconnect later
                self._on_stream_failure(exc, call)
            if self._reconnect:
                self._reconnect = False
                backoff = t.backoff_min
                continue
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, t.backoff_max)

    def _on_stream_failure(self, exc: BaseException, call) -> None:
        t = self.t
        self._call = None
        if call is not None:
            call.cancel()
        was_active = self.active_since is not None
        self.active_since = None
        if not self._reconnect:
            self.down = True
        n = len(self.queue)
        if n:
            self.queue.clear()
            self._drop(n, "stream failed")
        code = rpc_code(exc)
        details = rpc_details(exc) if code is not None else type(exc).__name__
        if code == grpc.StatusCode.FAILED_PRECONDITION:
            t.logger.error("peer refused the stream", remote_peer_id=id_hex(self.id),
                           local_member_id=id_hex(t.local_id), error=details)
        elif code == grpc.StatusCode.PERMISSION_DENIED:
            t.logger.error("peer says this member was removed from the cluster",
                           remote_peer_id=id_hex(self.id), error=details)
            t._call_removed()
        elif was_active:
            t.logger.warn("lost TCP streaming connection with remote peer",
                          remote_peer_id=id_hex(self.id), error=details)
        else:
            t.logger.debug("failed to connect to remote peer", remote_peer_id=id_hex(self.id),
                           url=self._channel_target, error=details)
        if not self._reconnect:
            self.report_unreachable(force=True)
            # Try the peer's next URL next time (channel() switches). With one URL the channel
            # stays: gRPC reconnects it with the short backoff set in CHANNEL_OPTIONS.
            self._url_idx += 1
