"""The watchable store driven directly: a real KVStore as the event source, notify() called after
each write txn (as the server's apply loop does), catch-up and victim steps run by hand."""
import random

import pytest

from pyetcd.pb import kv as mvccpb
from pyetcd.watch import WatchCreateError, WatchResp, WatchStream

from storeutil import Source, drain, ev_tuple, settle

PUT, DELETE = mvccpb.Event.PUT, mvccpb.Event.DELETE


@pytest.fixture
def src(tmp_path):
    s = Source(str(tmp_path / "db"))
    yield s
    s.close()


def events_of(resps):
    return [ev_tuple(e) for r in resps if isinstance(r, WatchResp) for e in r.events]


def test_synced_watchers_get_matching_events_with_their_revision(src):
    ws = WatchStream(src.store)
    one = ws.watch(0, b"a", None, 0)
    pre = ws.watch(0, b"p/", b"p0", 0)        # prefix p/
    frm = ws.watch(0, b"m", b"", 0)           # every key >= m
    assert (one, pre, frm) == (0, 1, 2)
    src.put(b"a", b"1")
    src.put(b"ab", b"2")
    src.put(b"p/x", b"3")
    src.delete(b"a")
    src.put(b"z", b"4")
    got = drain(ws)
    by_id = {}
    for r in got:
        by_id.setdefault(r.watch_id, []).append(r)
    assert [(r.revision, [(e.type, e.kv.key) for e in r.events]) for r in by_id[one]] == \
        [(2, [(PUT, b"a")]), (5, [(DELETE, b"a")])]
    assert [(e.kv.key) for r in by_id[pre] for e in r.events] == [b"p/x"]
    assert [(e.kv.key) for r in by_id[frm] for e in r.events] == [b"p/x", b"z"]
    assert by_id[frm][0].revision == 4


def test_one_revision_is_one_response_even_for_a_range_delete(src):
    ws = WatchStream(src.store)
    wid = ws.watch(0, b"k", b"l", 0)
    src.txn(puts=[(b"k1", b"a"), (b"k2", b"b"), (b"x", b"c"), (b"k3", b"d")])
    src.delete(b"k", b"l")
    got = drain(ws)
    assert [(r.watch_id, r.revision, [e.kv.key for e in r.events]) for r in got] == [
        (wid, 2, [b"k1", b"k2", b"k3"]), (wid, 3, [b"k1", b"k2", b"k3"])]
    assert all(e.type == DELETE for e in got[1].events)


def test_start_revision_in_the_past_catches_up_from_history(src):
    for i in range(10):
        src.put(b"k%d" % (i % 3), b"%d" % i)
    ws = WatchStream(src.store)
    wid = ws.watch(0, b"k1", None, 4)
    assert src.store.counts()["unsynced"] == 1
    assert drain(ws) == []
    src.store.sync_watchers()
    got = drain(ws)
    assert [e.kv.mod_revision for r in got for e in r.events] == [6, 9]  # k1 at 3, 6, 9; from 4
    assert got[0].revision == src.kv.rev
    assert src.store.counts() == {"synced": 1, "unsynced": 0, "victims": 0}
    src.put(b"k1", b"new")
    assert [(r.watch_id, r.events[0].kv.value) for r in drain(ws)] == [(wid, b"new")]


def test_catch_up_reads_bounded_batches_of_revisions(tmp_path):
    src = Source(str(tmp_path / "db"), batch_revs=10)
    try:
        for i in range(35):
            src.put(b"k", b"%d" % i)
        ws = WatchStream(src.store)
        ws.watch(0, b"k", None, 1)
        steps = 0
        while src.store.unsynced.watchers:
            src.store.sync_watchers()
            steps += 1
        got = drain(ws)
        assert steps == 4 and src.store.history_reads == 4
        assert [len(r.events) for r in got] == [9, 10, 10, 6]  # revisions 2..10, 11..20, 21..30, 31..36
        assert [r.revision for r in got] == [10, 20, 30, 36]
        assert [e.kv.mod_revision for r in got for e in r.events] == list(range(2, 37))
    finally:
        src.close()


def test_future_start_revision_waits_in_synced(src):
    ws = WatchStream(src.store)
    ws.watch(0, b"k", None, 4)
    for i in range(5):
        src.put(b"k", b"%d" % i)  # revisions 2..6
    assert [e.kv.mod_revision for r in drain(ws) for e in r.events] == [4, 5, 6]


def test_filters(src):
    ws = WatchStream(src.store)
    noput = ws.watch(0, b"k", None, 0, no_put=True)
    nodel = ws.watch(0, b"k", None, 0, no_delete=True)
    src.put(b"k")
    src.delete(b"k")
    src.put(b"k")
    got = drain(ws)
    assert [(r.watch_id, [e.type for e in r.events]) for r in got] == [(nodel, [PUT]), (noput, [DELETE]), (nodel, [PUT])]


def test_stream_rejects_duplicate_id_and_empty_range(src):
    ws = WatchStream(src.store)
    assert ws.watch(7, b"a", None, 0) == 7
    with pytest.raises(WatchCreateError, match="duplicate watch ID"):
        ws.watch(7, b"b", None, 0)
    with pytest.raises(WatchCreateError, match="watcher range is empty"):
        ws.watch(0, b"b", b"a", 0)
    with pytest.raises(WatchCreateError, match="watcher range is empty"):
        ws.watch(0, b"b", b"b", 0)
    assert ws.watch(0, b"a", None, 0) == 0 and ws.watch(0, b"a", None, 0) == 1
    assert ws.watch(-3, b"a", None, 0) == -3


def test_full_stream_parks_the_watcher_without_holding_others(src):
    slow = WatchStream(src.store, capacity=2)
    fast = WatchStream(src.store)
    s_id = slow.watch(0, b"k", None, 0)
    fast.watch(0, b"k", None, 0)
    for i in range(50):
        src.put(b"k", b"%d" % i)
    # the slow stream holds 2 responses, its third is pending, it left the synced group
    assert len(slow) == 2 and src.store.counts() == {"synced": 1, "unsynced": 0, "victims": 1}
    assert src.store.victims_total == 1
    assert [e.kv.mod_revision for r in drain(fast) for e in r.events] == list(range(2, 52))
    sink = []
    settle(src.store, [(slow, sink)])
    assert [e.kv.mod_revision for r in sink for e in r.events] == list(range(2, 52))
    assert all(r.watch_id == s_id for r in sink)
    assert src.store.counts() == {"synced": 2, "unsynced": 0, "victims": 0}
    src.put(b"k", b"after")
    assert [r.events[0].kv.value for r in drain(slow)] == [b"after"]


def test_victim_resend_reports_the_revision_it_observed(src):
    slow = WatchStream(src.store, capacity=1)
    slow.watch(0, b"k", None, 0)
    src.put(b"k")          # rev 2: queued
    src.put(b"k")          # rev 3: pending (victim)
    src.put(b"other")      # rev 4
    assert drain(slow, 1)[0].revision == 2
    assert src.store.move_victims() == 1
    r = drain(slow)
    assert [(x.revision, x.events[0].kv.mod_revision) for x in r] == [(3, 3)]
    assert src.store.counts()["unsynced"] == 1  # rev 4 still to check


def test_compacted_watcher_gets_a_compact_revision_and_is_dropped(src):
    for i in range(10):
        src.put(b"k", b"%d" % i)   # revisions 2..11
    src.kv.compact(6)
    ws = WatchStream(src.store)
    gone = ws.watch(0, b"k", None, 5)
    edge = ws.watch(0, b"k", None, 6)   # etcd: only min_rev < compact_rev is compacted
    src.store.sync_watchers()
    got = drain(ws)
    by = {r.watch_id: r for r in got}
    assert by[gone].compact_revision == 6 and by[gone].events == [] and by[gone].revision == 0
    assert [e.kv.mod_revision for e in by[edge].events] == [6, 7, 8, 9, 10, 11]
    assert src.store.counts() == {"synced": 1, "unsynced": 0, "victims": 0}


def test_victim_that_falls_behind_compaction_is_canceled_not_skipped(src):
    slow = WatchStream(src.store, capacity=1)
    wid = slow.watch(0, b"k", None, 0)
    for i in range(10):
        src.put(b"k", b"%d" % i)   # 2 queued, 3 pending, 4..11 missed while parked
    src.kv.compact(9)
    sink = []
    settle(src.store, [(slow, sink)])
    assert [e.kv.mod_revision for r in sink for e in r.events] == [2, 3]
    assert sink[-1].watch_id == wid and sink[-1].compact_revision == 9
    assert src.store.counts() == {"synced": 0, "unsynced": 0, "victims": 0}


def test_compacted_response_waits_for_room_in_the_stream(src):
    for i in range(5):
        src.put(b"k")
    src.kv.compact(4)
    ws = WatchStream(src.store, capacity=1)
    ws.watch(0, b"x", None, 0)
    src.put(b"x")                      # fills the stream
    old = ws.watch(0, b"k", None, 2)
    src.store.sync_watchers()
    assert src.store.counts()["unsynced"] == 1   # kept, retried later
    drain(ws)
    src.store.sync_watchers()
    assert [r.compact_revision for r in drain(ws)] == [4]
    assert old in ws.watchers  # etcd keeps the id until the client cancels it


def test_cancel_drops_pending_and_stops_delivery(src):
    ws = WatchStream(src.store, capacity=1)
    wid = ws.watch(0, b"k", None, 0)
    src.put(b"k")
    src.put(b"k")
    assert src.store.counts()["victims"] == 1
    assert ws.cancel(wid) and not ws.cancel(wid)
    assert src.store.counts() == {"synced": 0, "unsynced": 0, "victims": 0}
    drain(ws)
    src.put(b"k")
    src.store.move_victims()
    assert drain(ws) == []


def test_progress_only_for_synced_watchers(src):
    ws = WatchStream(src.store)
    src.put(b"k")
    src.put(b"k")
    live = ws.watch(0, b"k", None, 0)
    behind = ws.watch(0, b"k", None, 1)
    src.store.progress(ws.watchers[live])
    src.store.progress(ws.watchers[behind])
    assert [(r.watch_id, r.events, r.revision) for r in drain(ws)] == [(live, [], 3)]


def test_closed_stream_cancels_its_watchers(src):
    ws = WatchStream(src.store, capacity=1)
    ws.watch(0, b"k", None, 0)
    ws.watch(0, b"a", b"z", 1)
    src.put(b"k")
    src.put(b"k")
    ws.close()
    assert src.store.counts() == {"synced": 0, "unsynced": 0, "victims": 0}
    assert len(src.store.synced.ranges) == 0 and not src.store.synced.keys


KEYS = [b"a", b"a/1", b"a/2", b"b", b"b/x", b"c", b"\x00", b"zz"]


def _random_range(rnd):
    key = rnd.choice(KEYS + [b"a/", b"b/"])
    kind = rnd.random()
    if kind < 0.4:
        return key, None
    if kind < 0.6:
        return key, b""
    end = key + b"\xff" if rnd.random() < 0.5 else rnd.choice(KEYS + [b"c0", b"\xff"])
    return key, end


@pytest.mark.parametrize("seed", range(8))
def test_random_differential_against_history(tmp_path, seed):
    """Random writes, compactions, watchers (random ranges, start revisions, filters, shared
    small streams) and random reading: every watcher receives exactly the matching history from
    its start, in revision order, each revision whole; or an exact prefix of it and then a
    compacted cancel. Never a gap, a duplicate or a reorder."""
    rnd = random.Random(seed)
    src = Source(str(tmp_path / "db"), batch_revs=rnd.choice([3, 50, 1000]), batch_bytes=rnd.choice([1, 300, 1 << 20]),
                 max_watchers_per_sync=rnd.choice([2, 512]))
    store = src.store
    streams = [(WatchStream(store, capacity=rnd.randint(1, 4)), []) for _ in range(4)]
    watchers = {}  # (stream index, id) -> (key, end, first revision, no_put, no_delete)
    try:
        for step in range(600):
            op = rnd.random()
            if op < 0.45:
                src.put(rnd.choice(KEYS), b"v%d" % step)
            elif op < 0.55:
                src.delete(*_random_range(rnd)[:1])
            elif op < 0.6:
                k, e = _random_range(rnd)
                if e is None or not e or e > k:
                    src.delete(k, b"\x00" if e == b"" else (e or b""))
            elif op < 0.66:
                ks = rnd.sample(KEYS, rnd.randint(1, 4))
                src.txn(puts=[(k, b"t%d" % step) for k in ks])
            elif op < 0.69 and src.kv.rev > 5 and rnd.random() < 0.5:
                lo = max(src.kv.compact_rev + 1, 1)
                if lo <= src.kv.rev:
                    src.kv.compact(rnd.randint(lo, src.kv.rev))
            elif op < 0.8:
                si = rnd.randrange(len(streams))
                k, e = _random_range(rnd)
                if e and e <= k:
                    continue
                cur = src.kv.rev
                start = rnd.choice([0, 0, rnd.randint(1, cur + 3)])
                np_, nd = rnd.random() < 0.15, rnd.random() < 0.15
                wid = streams[si][0].watch(0, k, e, start, np_, nd)
                watchers[(si, wid)] = (k, e, start or cur + 1, np_, nd)
            elif op < 0.9:
                ws, sink = rnd.choice(streams)
                sink.extend(drain(ws, rnd.randint(0, 3)))
            else:
                store.move_victims() if rnd.random() < 0.5 else store.sync_watchers()
        settle(store, streams)
        compacted = 0
        for (si, wid), (k, e, first, np_, nd) in watchers.items():
            resps = [r for r in streams[si][1] if r.watch_id == wid]
            want = [ev_tuple(x) for x in src.history
                    if x.kv.mod_revision >= first and _contains(k, e, x.kv.key)
                    and not (np_ and x.type == PUT) and not (nd and x.type == DELETE)]
            got = events_of(resps)
            prev = 0
            for r in resps:
                revs = [x.kv.mod_revision for x in r.events]
                if revs:
                    assert revs == sorted(revs) and revs[0] > prev, "order / whole revisions"
                    assert r.revision >= revs[-1]
                    prev = revs[-1]
            if resps and resps[-1].compact_revision:
                compacted += 1
                assert got == want[:len(got)], f"watcher {wid} on stream {si}: not a prefix"
                assert all(not r.compact_revision for r in resps[:-1])
                # the cancel came because the next revision it needed was compacted
                assert first <= resps[-1].compact_revision
            else:
                assert got == want, f"watcher {wid} on stream {si} ({k!r}, {e!r}, from {first})"
        assert len(watchers) > 10
    finally:
        src.close()


def _contains(k, e, key):
    if e is None:
        return key == k
    return k <= key and (not e or key < e)


def test_catch_up_bounds_bytes_per_step_at_revision_boundaries(tmp_path):
    src = Source(str(tmp_path / "db"), batch_bytes=2500)
    try:
        for i in range(10):
            src.txn(puts=[(b"a%d" % i, b"x" * 500), (b"b%d" % i, b"y" * 500)])  # ~1 KB a revision
        src.delete(b"a", b"b")   # one revision of 10 tombstones
        ws = WatchStream(src.store)
        ws.watch(0, b"", b"", 1)  # every key (the store takes the index convention)
        while src.store.unsynced.watchers:
            src.store.sync_watchers()
        got = drain(ws)
        assert src.store.history_reads == len(got) > 3
        for r in got:  # every response: whole revisions, about batch_bytes, never more than one over
            revs = [e.kv.mod_revision for e in r.events]
            assert r.revision == revs[-1] and len(set(revs)) <= 3
        assert [ev_tuple(e) for r in got for e in r.events] == [ev_tuple(e) for e in src.history]
        assert [e.type for e in got[-1].events][-10:] == [DELETE] * 10  # the range delete, whole
    finally:
        src.close()


def test_restore_makes_synced_watchers_catch_up_from_the_new_store(tmp_path):
    """After a snapshot install the store's history is another one: synced watchers re-read
    from their next revision, and a watcher waiting for a future revision keeps waiting."""
    src = Source(str(tmp_path / "db"))
    other = Source(str(tmp_path / "db2"))
    try:
        ws = WatchStream(src.store)
        live = ws.watch(0, b"k", None, 0)
        future = ws.watch(0, b"k", None, 5)
        src.put(b"k", b"old")                      # rev 2, seen by `live`
        assert len(drain(ws)) == 1
        for i in range(5):
            other.put(b"k", b"new%d" % i)          # the snapshot's history: revs 2..6
        src.store.restore(other.kv)   # the server builds a new KVStore over the received db
        assert src.store.counts() == {"synced": 0, "unsynced": 2, "victims": 0}
        src.store.sync_watchers()
        by = {}
        for r in drain(ws):
            by.setdefault(r.watch_id, []).extend((e.kv.mod_revision, e.kv.value) for e in r.events)
        assert by[live] == [(3, b"new1"), (4, b"new2"), (5, b"new3"), (6, b"new4")]
        assert by[future] == [(5, b"new3"), (6, b"new4")]
        assert src.store.counts() == {"synced": 2, "unsynced": 0, "victims": 0}
    finally:
        src.close()
        other.close()
