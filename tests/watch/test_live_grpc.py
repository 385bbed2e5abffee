"""Live pyetcd over gRPC, compared with real etcd 3.5 where etcd is the reference.

- a seeded random write sequence (puts, range deletes, multi-put txns, compactions) runs on both;
  at random points watches open with random ranges, start revisions, prev_kv and filters, on
  both; the event lists must match (exactly, or, where a compaction raced a catching-up watcher,
  both must be a prefix of the same history and end in a compacted cancel).
  (PYETCD_WATCH_DIFF_SEEDS=1,2,... and PYETCD_WATCH_DIFF_STEPS=250 make longer runs.)
- a slow consumer: a watcher stops reading while many writes are made (PYETCD_WATCH_SLOW_N,
  default 3000; set 100000 for the full run); writes go on, and when it reads again it gets every
  event in order, or a compacted cancel, never a silent gap.
"""
import asyncio
import os
import random

import grpc
import pytest

from pyetcd.pb import rpc, rpc_grpc

from conftest import needs_watch, start_pyetcd

pytestmark = needs_watch

KEYS = [b"a", b"a/1", b"a/2", b"b", b"b/1", b"c", b"zz"]


class Side:
    """One server: a channel, a KV stub, and the watch streams opened on it."""

    def __init__(self, endpoint):
        self.ch = grpc.aio.insecure_channel(endpoint)
        self.kv = rpc_grpc.KVStub(self.ch)
        self.watch = rpc_grpc.WatchStub(self.ch)
        self.watchers = []   # [call, responses list, reader task]

    async def open(self, req):
        call = self.watch.Watch()
        await call.write(rpc.WatchRequest(create_request=req))
        created = await call.read()
        assert created.created and not created.canceled, created
        got = []

        async def reader():
            while True:
                r = await call.read()
                if r is grpc.aio.EOF:
                    return
                got.append(r)
        self.watchers.append((call, got, asyncio.ensure_future(reader())))
        return created.header.revision

    async def close(self):
        for call, _, task in self.watchers:
            call.cancel()
            task.cancel()
        await self.ch.close()


def _random_write(rnd, step):
    op = rnd.random()
    if op < 0.55:
        return "put", rpc.PutRequest(key=rnd.choice(KEYS), value=b"v%d" % step)
    if op < 0.7:
        return "del", rpc.DeleteRangeRequest(key=rnd.choice(KEYS))
    if op < 0.8:
        k = rnd.choice([b"a", b"b", b"a/"])
        return "del", rpc.DeleteRangeRequest(key=k, range_end=rnd.choice([k[:-1] + bytes([k[-1] + 1]), b"\x00"]))
    ks = rnd.sample(KEYS, rnd.randint(2, 4))
    return "txn", rpc.TxnRequest(success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=b"t%d" % step))
                                          for k in ks])


def _random_watch(rnd, cur):
    k = rnd.choice(KEYS + [b"a/", b""])
    kind = rnd.random()
    end = b""
    if kind < 0.35:
        end = b""
    elif kind < 0.55:
        end = b"\x00"
    elif k:
        end = k[:-1] + bytes([k[-1] + 1])  # prefix
    start = rnd.choice([0, 0, rnd.randint(1, cur + 2)])
    filters = [f for f, p in ((rpc.WatchCreateRequest.NOPUT, 0.15), (rpc.WatchCreateRequest.NODELETE, 0.15))
               if rnd.random() < p]
    return rpc.WatchCreateRequest(key=k, range_end=end, start_revision=start, prev_kv=rnd.random() < 0.5,
                                  filters=filters)


def _events(resps, last_compact):
    out, cancel = [], None
    for r in resps:
        for e in r.events:
            prev = None
            # prev_kv is read when sent; below the last compaction it may be gone on one side
            if e.HasField("prev_kv") and e.kv.mod_revision - 1 >= last_compact:
                prev = (e.prev_kv.value, e.prev_kv.mod_revision, e.prev_kv.version)
            out.append((e.type, e.kv.key, e.kv.value, e.kv.mod_revision, e.kv.create_revision, e.kv.version, prev))
        if r.canceled:
            cancel = r.compact_revision
    return out, cancel


async def _settle(sides, final_rev, timeout=60.0):
    """Wait until every watcher has seen the final revision (as far as it can) or stopped."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    prev, still = None, 0
    while loop.time() < deadline:
        counts = [len(g) for s in sides for _, g, _ in s.watchers]
        if counts == prev:
            still += 1
            if still >= 10:
                return
        else:
            prev, still = counts, 0
        await asyncio.sleep(0.2)


SEEDS = [int(x) for x in os.environ.get("PYETCD_WATCH_DIFF_SEEDS", "1,2").split(",")]


@pytest.mark.parametrize("seed", SEEDS)
def test_random_watches_match_real_etcd(tmp_path, seed):
    from pyetcd.testing import procs

    steps = int(os.environ.get("PYETCD_WATCH_DIFF_STEPS", "250"))
    rnd = random.Random(seed)

    async def main(e_ep, p_ep):
        etcd, py = Side(e_ep), Side(p_ep)
        last_compact = 0
        specs = []
        try:
            for step in range(steps):
                x = rnd.random()
                cur = (await etcd.kv.Range(rpc.RangeRequest(key=b"a", count_only=True))).header.revision
                if x < 0.1:
                    req = _random_watch(rnd, cur)
                    revs = [await s.open(req) for s in (etcd, py)]
                    assert revs[0] == revs[1]
                    specs.append(req)
                    continue
                if x < 0.13 and cur > last_compact + 5:
                    c = rnd.randint(last_compact + 1, cur - 1)
                    for s in (etcd, py):
                        await s.kv.Compact(rpc.CompactionRequest(revision=c))
                    last_compact = c
                    continue
                kind, req = _random_write(rnd, step)
                call = {"put": "Put", "del": "DeleteRange", "txn": "Txn"}[kind]
                hs = [(await getattr(s.kv, call)(req)).header.revision for s in (etcd, py)]
                assert hs[0] == hs[1], (step, kind)
            await _settle([etcd, py], cur)
            exact = 0
            for i, req in enumerate(specs):
                want, wc = _events(etcd.watchers[i][1], last_compact)
                got, gc = _events(py.watchers[i][1], last_compact)
                if wc is None and gc is None:
                    assert got == want, f"watch #{i}: {req}"
                    exact += 1
                else:  # a compaction raced this watcher's catch-up on one side or both
                    short, long_ = (got, want) if len(got) <= len(want) else (want, got)
                    assert short == long_[:len(short)], f"watch #{i}: {req}"
                    for evs, c in ((want, wc), (got, gc)):
                        if c is not None:
                            assert c <= last_compact and (not evs or evs[-1][3] < c)
            assert exact >= len(specs) // 2 and len(specs) >= 10
            assert sum(len(w[1]) for w in etcd.watchers) > 20  # the watches saw real traffic
        finally:
            await etcd.close()
            await py.close()

    with procs.start_member("etcd", str(tmp_path)) as e, start_pyetcd(tmp_path) as p:
        asyncio.run(asyncio.wait_for(main(e.endpoint, p.endpoint), 600))


@pytest.mark.parametrize("compact", [False, True], ids=["catch-up", "compacted"])
def test_slow_consumer_gets_everything_or_a_compacted_cancel(tmp_path, compact):
    n = int(os.environ.get("PYETCD_WATCH_SLOW_N", "3000"))

    async def main(ep):
        s = Side(ep)
        try:
            call = s.watch.Watch()
            await call.write(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(key=b"s/", range_end=b"s0")))
            first = (await call.read()).header.revision + 1
            sem = asyncio.Semaphore(64)
            value = b"x" * 512

            async def put(i):
                async with sem:
                    await s.kv.Put(rpc.PutRequest(key=b"s/%d" % (i % 100), value=value))
            await asyncio.gather(*(put(i) for i in range(n)))   # nobody reads the watch meanwhile
            last = (await s.kv.Range(rpc.RangeRequest(key=b"s/0"))).header.revision
            assert last == first + n - 1
            compact_at = None
            if compact:
                compact_at = last - 10
                await s.kv.Compact(rpc.CompactionRequest(revision=compact_at))
            got, canceled = [], None
            while (not got or got[-1] < last) and canceled is None:
                r = await asyncio.wait_for(call.read(), 60)
                got.extend(e.kv.mod_revision for e in r.events)
                if r.canceled:
                    canceled = r.compact_revision
            assert got == list(range(first, first + len(got)))   # in order, no gap, no duplicate
            if canceled is None:
                assert got[-1] == last
            else:
                assert compact and canceled == compact_at and got[-1] < compact_at
            call.cancel()
        finally:
            await s.close()

    with start_pyetcd(tmp_path) as p:
        asyncio.run(asyncio.wait_for(main(p.endpoint), 1800))


def test_fragments_and_progress_notify_match_real_etcd(tmp_path):
    """With --max-request-bytes 1024, a catch-up response of 800 revisions (~720 KiB, above etcd's
    limit of max-request-bytes + 512 KiB) watched with fragment=True arrives split the same way;
    with --experimental-watch-progress-notify-interval 1s, a progress_notify watcher gets the same
    event-less notification (watch id, header revision) as from etcd."""
    from pyetcd.testing import procs

    args = ["--max-request-bytes", "1024", "--experimental-watch-progress-notify-interval", "1s"]
    n = 800

    async def main(ep):
        s = Side(ep)
        try:
            sem = asyncio.Semaphore(32)

            async def put(i):
                async with sem:
                    await s.kv.Put(rpc.PutRequest(key=b"f/%04d" % i, value=b"x" * 900))
            await asyncio.gather(*(put(i) for i in range(n)))
            call = s.watch.Watch()
            for req in (rpc.WatchCreateRequest(key=b"idle", progress_notify=True, watch_id=3),
                        rpc.WatchCreateRequest(key=b"f/", range_end=b"f0", fragment=True, watch_id=1, start_revision=2)):
                await call.write(rpc.WatchRequest(create_request=req))
                assert (await call.read()).created
            shape, progress = [], None
            while progress is None or not shape or shape[-1][1]:
                r = await asyncio.wait_for(call.read(), 30)
                if r.watch_id == 3:
                    progress = (r.watch_id, len(r.events), r.header.revision, r.created, r.canceled)
                else:
                    shape.append((r.watch_id, r.fragment, len(r.events), r.events[0].kv.mod_revision))
            call.cancel()
            return shape, progress
        finally:
            await s.close()

    (tmp_path / "e").mkdir()
    (tmp_path / "p").mkdir()
    with procs.start_member("etcd", str(tmp_path / "e"), extra_args=args) as e:
        want = asyncio.run(asyncio.wait_for(main(e.endpoint), 300))
    with start_pyetcd(tmp_path / "p", extra_args=args) as p:
        got = asyncio.run(asyncio.wait_for(main(p.endpoint), 300))
    assert got == want
    assert len(want[0]) >= 2 and [f[1] for f in want[0]] == [True] * (len(want[0]) - 1) + [False]
    assert sum(f[2] for f in want[0]) == n
