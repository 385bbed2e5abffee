"""Client-side concurrency recipes over plain KV + leases (clientv3/concurrency's Session, Mutex
and Election), which is how etcdctl's `lock` and `elect` work."""
from __future__ import annotations

import queue
import threading

from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
from pyetcd.cli.printer_simple import range_end_prefix


class Session:
    """A lease kept alive in the background; `done` is set when it is lost."""

    def __init__(self, client, ttl: int = 60):
        self.client = client
        self.lease = client.call("LeaseGrant", rpc.LeaseGrantRequest(TTL=ttl)).ID
        self.ttl = ttl
        self.done = threading.Event()
        self._stop = threading.Event()
        self._q: "queue.Queue" = queue.Queue()
        threading.Thread(target=self._keepalive, daemon=True).start()

    def _requests(self):
        while True:
            item = self._q.get()
            if item is None:
                return
            yield rpc.LeaseKeepAliveRequest(ID=self.lease)

    def _keepalive(self):
        try:
            stream = self.client.stream("etcdserverpb.Lease", "LeaseKeepAlive", self._requests(),
                                        rpc.LeaseKeepAliveResponse)
            self._q.put(1)
            for resp in stream:
                if resp.TTL <= 0:
                    break
                if self._stop.wait(max(resp.TTL / 3.0, 0.5)):
                    break
                self._q.put(1)
        except Exception:  # noqa: BLE001 - any stream failure means the session is gone
            pass
        self.done.set()

    def close(self, revoke=True):
        self._stop.set()
        self._q.put(None)
        if revoke:
            try:
                self.client.call("LeaseRevoke", rpc.LeaseRevokeRequest(ID=self.lease))
            except Exception:  # noqa: BLE001
                pass


def _first_create(client, pfx: bytes):
    return client.call("Range", rpc.RangeRequest(key=pfx, range_end=range_end_prefix(pfx), limit=1,
                                                 sort_target=2, sort_order=1))


def wait_deletes(client, pfx: bytes, max_create_rev: int, cancel: threading.Event):
    """Wait until every key under pfx created at or before max_create_rev is gone."""
    while not cancel.is_set():
        resp = client.call("Range", rpc.RangeRequest(key=pfx, range_end=range_end_prefix(pfx), limit=1,
                                                     sort_target=2, sort_order=2,
                                                     max_create_revision=max_create_rev))
        if not resp.kvs:
            return
        wait_delete(client, resp.kvs[0].key, resp.header.revision, cancel)


def wait_delete(client, key: bytes, rev: int, cancel: threading.Event):
    """Return once `key` is deleted at or after `rev` (or when cancelled)."""
    events = watch_key(client, key, rev, cancel)
    try:
        for ev in events:
            if ev.type == 1:  # DELETE
                return
    finally:
        events.close()  # ends the watch stream now, not at garbage collection


class Mutex:
    def __init__(self, session: Session, name: str):
        self.s = session
        self.pfx = name.encode() + b"/"
        self.key = self.pfx + f"{session.lease:x}".encode()
        self.rev = 0
        self.header = None

    def lock(self, cancel: threading.Event):
        c = self.s.client
        end = range_end_prefix(self.pfx)
        owner = rpc.RequestOp(request_range=rpc.RangeRequest(key=self.pfx, range_end=end, limit=1,
                                                             sort_target=2, sort_order=1))
        resp = c.call("Txn", rpc.TxnRequest(
            compare=[rpc.Compare(key=self.key, target=1, result=0, create_revision=0)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=self.key, lease=self.s.lease)), owner],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=self.key)), owner]))
        self.rev = resp.header.revision
        if not resp.succeeded:
            self.rev = resp.responses[0].response_range.kvs[0].create_revision
        kvs = resp.responses[1].response_range.kvs
        if not kvs or kvs[0].create_revision == self.rev:
            self.header = resp.header
            return
        wait_deletes(c, self.pfx, self.rev - 1, cancel)
        self.header = c.call("Range", rpc.RangeRequest(key=self.key)).header

    def unlock(self):
        self.s.client.call("DeleteRange", rpc.DeleteRangeRequest(key=self.key))


class Election:
    def __init__(self, session: Session, name: str):
        self.s = session
        self.pfx = name.encode() + b"/"
        self.key = b""

    def campaign(self, value: bytes, cancel: threading.Event):
        c = self.s.client
        key = self.pfx + f"{self.s.lease:x}".encode()
        resp = c.call("Txn", rpc.TxnRequest(
            compare=[rpc.Compare(key=key, target=1, result=0, create_revision=0)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value, lease=self.s.lease))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=key))]))
        self.key = key
        rev = resp.header.revision
        if not resp.succeeded:
            kv = resp.responses[0].response_range.kvs[0]
            rev = kv.create_revision
            if kv.value != value:
                c.call("Put", rpc.PutRequest(key=key, value=value, lease=self.s.lease))
        wait_deletes(c, self.pfx, rev - 1, cancel)

    def resign(self):
        if self.key:
            self.s.client.call("DeleteRange", rpc.DeleteRangeRequest(key=self.key))

    def observe(self, emit, cancel: threading.Event):
        """Call emit(RangeResponse) for each new leader or proclamation, until cancelled."""
        c = self.s.client
        while not cancel.is_set():
            resp = _first_create(c, self.pfx)
            if not resp.kvs:
                wait_put(c, self.pfx, resp.header.revision + 1, cancel)
                continue
            emit(resp)
            leader = resp.kvs[0]
            for ev in watch_key(c, leader.key, resp.header.revision + 1, cancel):
                if ev.type == 1:
                    break
                r = rpc.RangeResponse(header=resp.header, kvs=[ev.kv], count=1)
                emit(r)


def wait_put(client, pfx, rev, cancel):
    for ev in watch_key(client, pfx, rev, cancel, range_end=range_end_prefix(pfx)):
        if ev.type == 0:
            return


def watch_key(client, key, rev, cancel, range_end=b""):
    q: "queue.Queue" = queue.Queue()
    q.put(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(key=key, range_end=range_end,
                                                                 start_revision=rev)))

    def reqs():
        while True:
            r = q.get()
            if r is None:
                return
            yield r

    stream = client.channel.stream_stream("/etcdserverpb.Watch/Watch",
                                          request_serializer=lambda r: r.SerializeToString(),
                                          response_deserializer=rpc.WatchResponse.FromString)(
        reqs(), metadata=client.metadata, wait_for_ready=True)
    threading.Thread(target=lambda: (cancel.wait(), stream.cancel()), daemon=True).start()
    try:
        for resp in stream:
            yield from resp.events
    except Exception:  # noqa: BLE001 - cancelled
        return
    finally:
        q.put(None)
