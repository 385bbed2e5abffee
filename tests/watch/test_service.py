"""The Watch gRPC service in-process: a real grpc.aio server and client on loopback, over a real
KVStore whose writes are fed to the watchable store by hand. No pyetcd process is needed, so
these run before the server wires the service."""
import asyncio
import io
import random
import types

import grpc
import pytest

from pyetcd.api.watch import WatchService, split_fragments
from pyetcd.pb import kv as mvccpb
from pyetcd.pb import rpc, rpc_grpc
from pyetcd.server.log import Logger
from pyetcd.testing.procs import free_port

from storeutil import Source

PUT, DELETE = mvccpb.Event.PUT, mvccpb.Event.DELETE


class FakeServer:
    cluster_id, member_id, term = 11, 22, 3

    def __init__(self, kv, **cfg):
        self.kv = kv
        self.cfg = types.SimpleNamespace(**{"max_request_bytes": 1536 * 1024,
                                            "experimental_watch_progress_notify_interval": 0, **cfg})
        self.lg = Logger("error", stream=io.StringIO())

    def fill_header(self, h):
        h.cluster_id, h.member_id, h.raft_term = self.cluster_id, self.member_id, self.term
        if h.revision == 0:
            h.revision = self.kv.rev


class Env:
    def __init__(self, src, server, grpc_server, channel):
        self.src, self.server, self.g, self.ch = src, server, grpc_server, channel
        self.stub = rpc_grpc.WatchStub(channel)


async def _env(tmp_path, **cfg):
    src = Source(str(tmp_path / "db"))
    server = FakeServer(src.kv, **cfg)
    src.store.start()
    g = grpc.aio.server()
    svc = WatchService(server, src.store)
    assert svc.fragment_bytes == server.cfg.max_request_bytes + 512 * 1024  # etcd's limit
    if "fragment_bytes" in cfg:
        svc.fragment_bytes = cfg["fragment_bytes"]
    rpc_grpc.add_WatchServicer_to_server(svc, g)
    port = free_port()
    g.add_insecure_port(f"127.0.0.1:{port}")
    await g.start()
    ch = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    return Env(src, server, g, ch)


async def _close(env):
    await env.ch.close()
    await env.g.stop(None)
    await env.src.store.stop()
    env.src.close()


def run(tmp_path, body, **cfg):
    async def main():
        env = await _env(tmp_path, **cfg)
        try:
            await asyncio.wait_for(body(env), 60)  # a hang fails the test instead of blocking CI
        finally:
            await _close(env)
    asyncio.run(main())


def create(key, **kw):
    return rpc.WatchRequest(create_request=rpc.WatchCreateRequest(key=key, **kw))


def test_create_events_prev_kv_cancel_and_progress_request(tmp_path):
    async def body(env):
        src = env.src
        src.put(b"a", b"0")
        src.put(b"a", b"1")
        call = env.stub.Watch()
        await call.write(create(b"a", start_revision=2, prev_kv=True, watch_id=5))
        r = await call.read()
        assert (r.watch_id, r.created, r.header.revision, r.header.member_id) == (5, True, 3, 22)
        r = await call.read()
        assert [(e.kv.mod_revision, e.HasField("prev_kv")) for e in r.events] == [(2, False), (3, True)]
        assert r.events[1].prev_kv.value == b"0" and r.header.revision == 3
        await call.write(create(b"a", watch_id=5))
        r = await call.read()
        assert (r.watch_id, r.created, r.canceled, r.cancel_reason) == \
            (-1, True, True, "mvcc: duplicate watch ID provided on the WatchStream")
        await call.write(create(b"b", range_end=b"a"))
        r = await call.read()
        assert (r.watch_id, r.canceled, r.cancel_reason) == (-1, True, "mvcc: watcher range is empty")
        await call.write(create(b"", range_end=b"\x00", filters=[rpc.WatchCreateRequest.NOPUT]))
        r = await call.read()
        assert (r.watch_id, r.created) == (0, True)
        src.put(b"a", b"2")   # rev 4
        src.delete(b"a")      # rev 5
        got = [await call.read(), await call.read(), await call.read()]
        assert sorted((x.watch_id, x.header.revision, x.events[0].type) for x in got) == \
            [(0, 5, DELETE), (5, 4, PUT), (5, 5, DELETE)]
        assert [x.events[0].prev_kv.value for x in got if x.watch_id == 5] == [b"1", b"2"]
        await call.write(rpc.WatchRequest(progress_request=rpc.WatchProgressRequest()))
        r = await call.read()
        assert (r.watch_id, r.header.revision, len(r.events)) == (-1, 5, 0)
        await call.write(rpc.WatchRequest(cancel_request=rpc.WatchCancelRequest(watch_id=99)))
        await call.write(rpc.WatchRequest(cancel_request=rpc.WatchCancelRequest(watch_id=5)))
        r = await call.read()
        assert (r.watch_id, r.canceled, r.created) == (5, True, False)  # nothing came for id 99
        call.cancel()

    async def body2(env):
        src = env.src
        call = env.stub.Watch()
        await call.write(create(b"a", watch_id=5))
        await call.read()
        await call.write(rpc.WatchRequest(cancel_request=rpc.WatchCancelRequest(watch_id=5)))
        await call.write(create(b"b"))
        r1, r2 = await call.read(), await call.read()
        assert (r1.watch_id, r1.canceled, r2.created) == (5, True, True)
        src.put(b"a")
        src.put(b"b")
        r = await call.read()
        assert [e.kv.key for e in r.events] == [b"b"]  # watcher 5 is gone
        call.cancel()
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    run(tmp_path / "1", body)
    run(tmp_path / "2", body2)


def test_compacted_watch_is_canceled_with_header_revision_zero(tmp_path):
    async def body(env):
        for i in range(5):
            env.src.put(b"k", b"%d" % i)
        env.src.kv.compact(4)
        call = env.stub.Watch()
        await call.write(create(b"k", start_revision=2))
        r = await call.read()
        assert r.created
        r = await call.read()
        assert (r.canceled, r.compact_revision, r.header.revision, r.header.cluster_id) == (True, 4, 0, 11)
        call.cancel()
    run(tmp_path, body)


def test_fragmented_watch_splits_big_responses(tmp_path):
    async def body(env):
        call = env.stub.Watch()
        await call.write(create(b"f/", range_end=b"f0", fragment=True))
        await call.write(create(b"f/", range_end=b"f0"))
        assert (await call.read()).created and (await call.read()).created
        env.src.txn(puts=[(b"f/%02d" % i, b"x" * 300) for i in range(20)])
        parts, whole = [], None
        while whole is None or not parts or parts[-1].fragment:
            r = await call.read()
            if r.watch_id == 0:
                parts.append(r)
            else:
                whole = r
        assert len(parts) > 3 and all(p.fragment for p in parts[:-1]) and not parts[-1].fragment
        assert [e for p in parts for e in p.events] == list(whole.events) and len(whole.events) == 20
        call.cancel()
    run(tmp_path, body, fragment_bytes=1024)


def test_split_fragments_follows_etcd():
    rnd = random.Random(3)
    wr = rpc.WatchResponse(watch_id=3)
    wr.header.revision = 9
    for i in range(40):
        e = wr.events.add()
        e.kv.key = b"k%d" % i
        e.kv.value = b"v" * rnd.randint(0, 400)
    for limit in (1, 100, 700, 2000, 10**6):
        parts = split_fragments(wr, limit)
        assert [e for p in parts for e in p.events] == list(wr.events)
        assert [p.fragment for p in parts] == [True] * (len(parts) - 1) + [False]
        if wr.ByteSize() < limit:
            assert parts == [wr]
            continue
        for p in parts:
            q = rpc.WatchResponse()
            q.CopyFrom(p)
            q.fragment = True
            assert len(p.events) == 1 or q.ByteSize() < limit     # fits, or a lone big event
        for p, nxt in zip(parts, parts[1:]):
            q = rpc.WatchResponse()
            q.CopyFrom(p)
            q.events.append(nxt.events[0])
            assert q.ByteSize() >= limit                            # greedy, as etcd
        assert p.watch_id == 3 and p.header.revision == 9
    one = rpc.WatchResponse()
    one.events.add().kv.value = b"x" * 5000
    assert split_fragments(one, 10) == [one]


def test_progress_notify_at_the_configured_interval(tmp_path):
    async def body(env):
        call = env.stub.Watch()
        await call.write(create(b"p", progress_notify=True))
        await call.write(create(b"q"))
        assert (await call.read()).created and (await call.read()).created
        env.src.put(b"other")
        r = await call.read()   # a progress notification, for the watcher that asked only
        assert (r.watch_id, len(r.events), r.header.revision, r.created, r.canceled) == (0, 0, 2, False, False)
        call.cancel()
    run(tmp_path, body, experimental_watch_progress_notify_interval=0.2)


def test_half_close_keeps_the_stream(tmp_path):
    async def body(env):
        call = env.stub.Watch()
        await call.write(create(b"k"))
        await call.done_writing()
        assert (await call.read()).created
        env.src.put(b"k", b"after-close")
        r = await call.read()
        assert r.events[0].kv.value == b"after-close"
        call.cancel()
    run(tmp_path, body)


@pytest.mark.parametrize("compact", [False, True], ids=["catch-up", "compacted"])
def test_stalled_reader_is_parked_and_caught_up(tmp_path, compact):
    """A client stops reading while thousands of writes go on: the apply path never waits (the
    writes complete), the watcher is parked as a victim, and when the client reads again it gets
    every event in order, or (if history was compacted meanwhile) a prefix and a compacted cancel."""
    n = 3000

    async def body(env):
        src = env.src
        call = env.stub.Watch()
        other = env.stub.Watch()
        await call.write(create(b"s/", range_end=b"s0"))
        assert (await call.read()).created
        (stalled,) = src.store.synced.watchers
        await other.write(create(b"s/", range_end=b"s0"))
        assert (await other.read()).created
        seen_other, other_cancel = [], []

        async def read_other():
            while len(seen_other) < n and not other_cancel:
                r = await other.read()
                seen_other.extend(e.kv.mod_revision for e in r.events)
                if r.canceled:
                    other_cancel.append(r.compact_revision)
        reader = asyncio.ensure_future(read_other())
        first = src.kv.rev + 1
        compacted_at = None
        for i in range(n):
            src.put(b"s/%d" % (i % 50), b"x" * 2000)  # 6 MB: more than gRPC buffers
            if i % 50 == 0:
                await asyncio.sleep(0)   # let the gRPC writers run; the stalled one fills up
            if compact and compacted_at is None and stalled.victim and stalled.min_rev < src.kv.rev:
                compacted_at = src.kv.rev
                src.kv.compact(compacted_at)
        last = src.kv.rev
        assert src.store.victims_total >= 1 and stalled.min_rev < last, "the stalled stream never filled up"
        await reader   # the other watcher was not held back by the stalled one
        assert seen_other == list(range(first, first + len(seen_other)))
        assert other_cancel or seen_other[-1] == last
        got, canceled = [], None
        while (not got or got[-1] < last) and canceled is None:
            r = await call.read()
            revs = [e.kv.mod_revision for e in r.events]
            assert revs == sorted(revs)
            got.extend(revs)
            if r.canceled:
                canceled = r
        assert got == list(range(first, first + len(got)))  # no gap, no duplicate, in order
        if compact:
            assert compacted_at is not None
            assert canceled is not None and canceled.compact_revision == compacted_at
            assert got[-1] < compacted_at
        else:
            assert canceled is None and got[-1] == last
        call.cancel()
        other.cancel()
    run(tmp_path, body)
