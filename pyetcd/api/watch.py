"""etcdserverpb.Watch (etcd server/etcdserver/api/v3rpc/watch.go): one bidirectional stream carries
many watchers.

What goes out, as etcd 3.5.1 sends it (checked against the real server):

- create -> ``created`` with the new watch_id; header revision = store revision at creation.
  A client-chosen id already in use, or key >= range_end, is not a stream error: the answer is
  ``created, canceled, watch_id -1, cancel_reason "mvcc: duplicate watch ID provided on the
  WatchStream"`` (or ``"mvcc: watcher range is empty"``). watch_id 0 asks for an automatic id.
- events -> header revision = the revision the response reflects (a synced watcher's event
  revision; a catching-up watcher's batch end); prev_kv read at mod_revision - 1 (not for a
  create event, nor when that revision is compacted); NOPUT / NODELETE filters.
- compacted -> ``canceled, compact_revision`` and header revision 0.
- cancel -> ``canceled`` for a known id; nothing for an unknown one.
- WatchProgressRequest -> one response, watch_id -1, header revision = store revision.
- progress_notify -> every experimental-watch-progress-notify-interval (+ up to 10% jitter), an
  event-less response to each synced watcher that asked and got no events since the last tick.
- fragment -> a response of at least max-request-bytes + 512 KiB (etcd's grpcOverheadBytes: the
  watch server's limit is the gRPC message limit) with 2+ events is split; every part but the
  last has ``fragment`` set.
A client's half-close does not end the stream (etcd keeps sending until the RPC is cancelled).
"""
from __future__ import annotations

import asyncio
import random

from pyetcd import errors
from pyetcd.pb import kv as mvccpb
from pyetcd.pb import rpc, rpc_grpc
from pyetcd.watch import Control, WatchCreateError, WatchResp, WatchStream

from .base import Service

_PUT = mvccpb.Event.PUT
_NOPUT = rpc.WatchCreateRequest.NOPUT
_NODELETE = rpc.WatchCreateRequest.NODELETE
GRPC_OVERHEAD_BYTES = 512 * 1024


def split_fragments(wr, max_bytes: int) -> list:
    """etcd's sendFragments: split a response whose size is >= max_bytes into parts, each
    holding as many events as fit (at least one), all but the last marked ``fragment``."""
    evs = list(wr.events)
    if len(evs) < 2 or wr.ByteSize() < max_bytes:
        return [wr]
    base = rpc.WatchResponse()
    base.CopyFrom(wr)
    del base.events[:]
    base.fragment = True
    parts, i = [], 0
    while True:
        cur = rpc.WatchResponse()
        cur.CopyFrom(base)
        size = cur.ByteSize()
        n = 0
        while i < len(evs):
            # adding an event adds its length-delimited encoding: tag + varint length + body
            es = evs[i].ByteSize()
            add = 1 + _varint_len(es) + es
            if n >= 1 and size + add >= max_bytes:
                break
            cur.events.append(evs[i])
            size += add
            n += 1
            i += 1
        if i == len(evs):
            cur.fragment = False
        parts.append(cur)
        if not cur.fragment:
            return parts


def _varint_len(n: int) -> int:
    k = 1
    while n >= 0x80:
        n >>= 7
        k += 1
    return k


class _StreamState:
    """Per-stream options of its watchers (etcd's serverWatchStream maps)."""

    __slots__ = ("ws", "prev_kv", "fragment", "progress")

    def __init__(self, ws: WatchStream):
        self.ws = ws
        self.prev_kv: set[int] = set()
        self.fragment: set[int] = set()
        self.progress: dict[int, bool] = {}

    def forget(self, wid: int) -> None:
        self.prev_kv.discard(wid)
        self.fragment.discard(wid)
        self.progress.pop(wid, None)


# etcd 3.5.1 puts the Go text of rpctypes.ErrGRPCPermissionDenied (a gRPC status) in cancel_reason
DENIED_REASON = "rpc error: code = PermissionDenied desc = etcdserver: permission denied"


class WatchService(Service, rpc_grpc.WatchServicer):
    auth_guard = None  # api.auth_guard.AuthGuard: checks each create request, as etcd's isWatchPermitted

    def __init__(self, server, store):
        super().__init__(server)
        self.store = store
        # responses at least this big are fragmented (for watchers that asked)
        self.fragment_bytes = server.cfg.max_request_bytes + GRPC_OVERHEAD_BYTES

    def _header(self, h, rev: int) -> None:
        self.server.fill_header(h)
        h.revision = rev  # may be 0: etcd's compacted response carries revision 0

    async def Watch(self, request_iterator, context):
        ws = WatchStream(self.store)
        st = _StreamState(ws)
        recv = asyncio.get_running_loop().create_task(self._recv_loop(request_iterator, st, context))
        ticker = None
        interval = float(getattr(self.server.cfg, "experimental_watch_progress_notify_interval", 0) or 0)
        if interval > 0:
            ticker = asyncio.get_running_loop().create_task(self._progress_loop(st, interval))
        max_bytes = self.fragment_bytes
        try:
            while True:
                item = await ws.get()
                if item is None:
                    return
                if isinstance(item, Control):
                    yield item.msg
                    continue
                wr = self._to_pb(item, st)
                if item.watch_id in st.fragment:
                    for part in split_fragments(wr, max_bytes):
                        yield part
                else:
                    yield wr
                if item.events and st.progress.get(item.watch_id):
                    st.progress[item.watch_id] = False  # events stand in for the next progress
        finally:
            recv.cancel()
            if ticker is not None:
                ticker.cancel()
            ws.close()

    def _to_pb(self, r: WatchResp, st: _StreamState):
        wr = rpc.WatchResponse(watch_id=r.watch_id)
        self._header(wr.header, r.revision)
        if r.compact_revision:
            wr.compact_revision = r.compact_revision
            wr.canceled = True
        if r.events:
            if r.watch_id in st.prev_kv:
                kv = self.server.kv
                for ev in r.events:
                    e = wr.events.add()
                    e.CopyFrom(ev)
                    k = ev.kv
                    if ev.type == _PUT and k.create_revision == k.mod_revision:
                        continue  # a create event has no previous value
                    try:
                        got = kv.range(k.key, rev=k.mod_revision - 1, limit=1)
                    except errors.EtcdError:
                        continue
                    if got.kvs:
                        e.prev_kv.CopyFrom(got.kvs[0])
            else:
                wr.events.extend(r.events)
        return wr

    async def _recv_loop(self, request_iterator, st: _StreamState, context=None) -> None:
        try:
            async for req in request_iterator:
                which = req.WhichOneof("request_union")
                if which == "create_request":
                    c = req.create_request
                    if self.auth_guard is not None and not await self.auth_guard.watch_permitted(context, c):
                        wr = rpc.WatchResponse(watch_id=c.watch_id, created=True, canceled=True,
                                               cancel_reason=DENIED_REASON)
                        self._header(wr.header, self.store.rev)
                        st.ws.put_control(wr)
                        continue
                    self._create(c, st)
                elif which == "cancel_request":
                    wid = req.cancel_request.watch_id
                    if st.ws.cancel(wid):
                        wr = rpc.WatchResponse(watch_id=wid, canceled=True)
                        self._header(wr.header, self.store.rev)
                        st.ws.put_control(wr)
                        st.forget(wid)
                elif which == "progress_request":
                    wr = rpc.WatchResponse(watch_id=-1)
                    self._header(wr.header, self.store.rev)
                    st.ws.put_control(wr)
                # anything else: etcd ignores it rather than closing the stream
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the client went away mid-read; the writer ends with the RPC
            self.server.lg.debug("watch stream receive ended", error=repr(e))

    def _create(self, c, st: _StreamState) -> None:
        key = c.key or b"\x00"  # etcd: "\x00" is the smallest key
        end = c.range_end
        if not end:
            end = None          # one key
        elif end == b"\x00":
            end = b""           # every key >= key
        no_put = _NOPUT in c.filters
        no_delete = _NODELETE in c.filters
        rev = self.store.rev
        start = c.start_revision or rev + 1
        wr = rpc.WatchResponse(created=True)
        self._header(wr.header, rev)
        try:
            # store.watch only registers (it sends nothing), and nothing awaits here, so the
            # created response below is queued before any response of the new watcher.
            wid = st.ws.watch(c.watch_id, key, end, start, no_put, no_delete)
        except WatchCreateError as e:
            wr.watch_id = -1
            wr.canceled = True
            wr.cancel_reason = str(e)
            st.ws.put_control(wr)
            return
        wr.watch_id = wid
        st.ws.put_control(wr)
        if c.progress_notify:
            st.progress[wid] = True
        if c.prev_kv:
            st.prev_kv.add(wid)
        if c.fragment:
            st.fragment.add(wid)

    async def _progress_loop(self, st: _StreamState, interval: float) -> None:
        period = interval + random.uniform(0, interval / 10)  # etcd's jitter
        while True:
            await asyncio.sleep(period)
            for wid, due in list(st.progress.items()):
                if due:
                    w = st.ws.watchers.get(wid)
                    if w is not None:
                        self.store.progress(w)
                st.progress[wid] = True
