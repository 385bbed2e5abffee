"""KVStore semantics: revisions, versions, generations, ranges, txns, compaction, hash, restart."""
from __future__ import annotations

import crc32c
import pytest

from pyetcd.errors import ErrCompacted, ErrFutureRev
from pyetcd.pb import kv as mvccpb
from pyetcd.storage.backend import Backend
from pyetcd.storage.mvcc import KVStore
from pyetcd.storage.mvcc import kvstore as kvs_mod
from pyetcd.storage.mvcc.index import NativeTreeIndex, PyTreeIndex
from pyetcd.storage.mvcc.revision import (bytes_to_rev, main_rev_bytes, py_bytes_to_rev, py_rev_to_bytes,
                                          py_tombstone_bytes, rev, rev_main, rev_to_bytes)

IMPLS = [pytest.param(PyTreeIndex, id="py"),
         pytest.param(NativeTreeIndex, id="native",
                      marks=pytest.mark.skipif(NativeTreeIndex is None, reason="native not built"))]


@pytest.fixture(params=IMPLS)
def factory(request, monkeypatch):
    """The key index to use; with "py", the store's codecs are the plain Python ones too."""
    if request.param is PyTreeIndex:
        monkeypatch.setattr(kvs_mod, "_encode_put_event", None)
        monkeypatch.setattr(kvs_mod, "_decode_kv_head", kvs_mod._py_decode_kv_head)
        monkeypatch.setattr(kvs_mod, "_rev_to_bytes", py_rev_to_bytes)
        monkeypatch.setattr(kvs_mod, "_tombstone_bytes", py_tombstone_bytes)
        monkeypatch.setattr(kvs_mod, "_bytes_to_rev", py_bytes_to_rev)
    return request.param


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "db")


@pytest.fixture
def s(path, factory):
    st = KVStore(Backend(path), index_factory=factory)
    yield st
    st.be.close()


def reopen(st, factory):
    st.be.close()
    return KVStore(Backend(st.be.path), index_factory=factory)


def put(st, k, v, lease=0):
    tw = st.write()
    prev = tw.put(k, v, lease)
    tw.end()
    return prev


def delete(st, k, end=b""):
    tw = st.write()
    prevs = tw.delete_range(k, end)
    tw.end()
    return prevs


def kvt(m):
    return (m.key, m.value, m.create_revision, m.mod_revision, m.version, m.lease)


def test_fresh_store(s):
    assert (s.rev, s.compact_rev) == (1, -1)
    r = s.range(b"a")
    assert (r.kvs, r.count, r.rev) == ([], 0, 1)


def test_put_versions_and_generations(s):
    assert put(s, b"k", b"v1") is None
    assert s.rev == 2
    prev = put(s, b"k", b"v2", lease=7)
    assert kvt(prev) == (b"k", b"v1", 2, 2, 1, 0)
    assert [kvt(m) for m in s.range(b"k").kvs] == [(b"k", b"v2", 2, 3, 2, 7)]
    assert [kvt(m) for m in delete(s, b"k")] == [(b"k", b"v2", 2, 3, 2, 7)]
    assert s.rev == 4
    assert s.range(b"k").count == 0
    put(s, b"k", b"v3")  # a new generation
    assert [kvt(m) for m in s.range(b"k").kvs] == [(b"k", b"v3", 5, 5, 1, 0)]


def test_noop_delete_does_not_bump_revision(s):
    tw = s.write()
    assert tw.delete_range(b"missing") == []
    assert tw.end() == []
    assert s.rev == 1
    put(s, b"a", b"1")
    delete(s, b"a")
    assert delete(s, b"a") == []
    assert s.rev == 3


def test_txn_shares_main_revision_and_orders_events(s):
    put(s, b"old", b"x")
    tw = s.write()
    tw.put(b"b", b"1")
    tw.put(b"a", b"2")
    tw.delete_range(b"old")
    tw.put(b"b", b"3")  # same key twice: the store allows it (the server forbids it)
    evs = tw.end()
    assert s.rev == 3
    assert [(e.type, e.kv.key, e.kv.mod_revision, e.kv.version) for e in evs] == [
        (mvccpb.Event.PUT, b"b", 3, 1), (mvccpb.Event.PUT, b"a", 3, 1),
        (mvccpb.Event.DELETE, b"old", 3, 0), (mvccpb.Event.PUT, b"b", 3, 2)]
    assert evs[2].kv == mvccpb.KeyValue(key=b"old", mod_revision=3)  # tombstone event: key + rev
    keys = s.be.keys("key", b"", b"\xff")
    assert keys == [rev_to_bytes(rev(2, 0)), rev_to_bytes(rev(3, 0)), rev_to_bytes(rev(3, 1)),
                    rev_to_bytes(rev(3, 2)) + b"t", rev_to_bytes(rev(3, 3))]
    assert s.be.get("key", keys[3]) == mvccpb.KeyValue(key=b"old").SerializeToString()


def test_txn_reads_its_own_writes(s):
    put(s, b"a", b"1")
    tw = s.write()
    r = tw.range(b"a")
    assert (r.rev, [m.value for m in r.kvs]) == (2, [b"1"])
    with pytest.raises(type(ErrFutureRev)) as e:
        tw.range(b"a", rev=3)  # nothing written yet: 3 is the future
    assert e.value == ErrFutureRev
    tw.put(b"a", b"2")
    tw.put(b"b", b"3")
    r = tw.range(b"a", b"c")
    assert (r.rev, [m.value for m in r.kvs]) == (3, [b"2", b"3"])
    assert [m.value for m in tw.range(b"a", b"c", rev=2).kvs] == [b"1"]
    tw.delete_range(b"a")
    assert tw.range(b"a").count == 0
    tw.put(b"a", b"4")  # re-created in the same txn
    assert kvt(tw.range(b"a").kvs[0]) == (b"a", b"4", 3, 3, 1, 0)
    tw.end()
    assert [kvt(m) for m in s.range(b"a", b"c").kvs] == [(b"a", b"4", 3, 3, 1, 0), (b"b", b"3", 3, 3, 1, 0)]


def test_range_end_semantics_limit_count(s):
    tw = s.write()
    for k in [b"a", b"a\x00", b"ab", b"b", b"c", b"\xff"]:
        tw.put(k, k)
    tw.end()
    keys = lambda r: [m.key for m in r.kvs]  # noqa: E731
    assert keys(s.range(b"a")) == [b"a"]
    assert keys(s.range(b"a", b"b")) == [b"a", b"a\x00", b"ab"]
    assert keys(s.range(b"b", b"\x00")) == [b"b", b"c", b"\xff"]
    assert keys(s.range(b"\x00", b"\x00")) == [b"a", b"a\x00", b"ab", b"b", b"c", b"\xff"]
    assert keys(s.range(b"c", b"a")) == []
    r = s.range(b"a", b"\x00", limit=2)
    assert (keys(r), r.count) == ([b"a", b"a\x00"], 6)
    r = s.range(b"a", b"c", count_only=True)
    assert (r.kvs, r.count) == ([], 4)
    r = s.range(b"a", b"b", keys_only=True)
    assert [(m.key, m.value, m.mod_revision) for m in r.kvs] == [(b"a", b"", 2), (b"a\x00", b"", 2),
                                                                 (b"ab", b"", 2)]


def test_historical_reads(s):
    put(s, b"a", b"1")      # 2
    put(s, b"b", b"1")      # 3
    put(s, b"a", b"2")      # 4
    delete(s, b"b")         # 5
    put(s, b"b", b"3")      # 6
    at = lambda r: [(m.key, m.value, m.version) for m in s.range(b"a", b"z", rev=r).kvs]  # noqa: E731
    assert at(1) == []
    assert at(2) == [(b"a", b"1", 1)]
    assert at(3) == [(b"a", b"1", 1), (b"b", b"1", 1)]
    assert at(4) == [(b"a", b"2", 2), (b"b", b"1", 1)]
    assert at(5) == [(b"a", b"2", 2)]
    assert at(6) == at(0) == [(b"a", b"2", 2), (b"b", b"3", 1)]
    assert s.range(b"a", rev=6).rev == 6  # the result's rev is the current revision
    with pytest.raises(type(ErrFutureRev)) as e:
        s.range(b"a", rev=7)
    assert e.value == ErrFutureRev


def test_compaction_errors_and_keep(s):
    for v in (b"1", b"2", b"3"):
        put(s, b"a", v)          # 2, 3, 4
    put(s, b"d", b"x")           # 5
    delete(s, b"d")              # 6
    put(s, b"a", b"4")           # 7
    with pytest.raises(type(ErrFutureRev)) as e:
        s.compact(8)
    assert e.value == ErrFutureRev
    s.compact(6)
    assert s.compact_rev == 6
    for bad in (5, 6):
        with pytest.raises(type(ErrCompacted)) as e:
            s.compact(bad)
        assert e.value == ErrCompacted
    with pytest.raises(type(ErrCompacted)) as e:
        s.range(b"a", rev=5)
    assert e.value == ErrCompacted
    r = s.range(b"a", b"z", rev=6)  # the compact revision itself stays readable
    assert [(m.key, m.value, m.version, m.create_revision) for m in r.kvs] == [(b"a", b"3", 3, 2)]
    # kept: a@4 (latest at 6) and a@7; dropped: a@2, a@3, d@5 and its tombstone d@6
    assert [rev_main(bytes_to_rev(k)) for k in s.be.keys("key", b"", b"\xff")] == [4, 7]
    assert s.index.generations(b"d") is None
    put(s, b"a", b"5")
    assert s.range(b"a").kvs[0].version == 5  # versions count on across compaction
    assert s.be.get("meta", b"finishedCompactRev") == main_rev_bytes(6)
    assert s.be.get("meta", b"scheduledCompactRev") == main_rev_bytes(6)


def test_hash_kv_errors_and_revision_bound(s):
    put(s, b"a", b"1")
    h2 = s.hash_kv(2)
    put(s, b"a", b"2")
    assert s.hash_kv(2) == (h2[0], 3, -1)  # later revisions do not change an old hash
    assert s.hash_kv(0)[0] != h2[0]
    with pytest.raises(type(ErrFutureRev)):
        s.hash_kv(4)
    s.compact(2)
    with pytest.raises(type(ErrCompacted)) as e:
        s.hash_kv(2)
    assert e.value == ErrCompacted
    assert s.hash_kv(3)[1:] == (3, 2)


def test_hash_skips_what_compaction_at_hash_rev_would_drop(s):
    """etcd 3.5's HashByRev: below compact_rev+1, hash only the revisions Keep(hash rev) keeps."""
    put(s, b"x", b"1")   # 2
    put(s, b"x", b"2")   # 3
    put(s, b"y", b"1")   # 4
    delete(s, b"y")      # 5
    put(s, b"z", b"1")   # 6
    s.compact(4)         # keeps x@3, y@4 (the latest at 4) in the bucket
    ks = s.be.keys("key", b"", b"\xff")
    assert [rev_main(bytes_to_rev(k)) for k in ks] == [3, 4, 5, 6]
    # at 6, y is deleted, so y@4 (below 5 and not kept at 6) is skipped; x@3 is kept at 6
    want = crc32c.crc32c(b"key")
    for k in (ks[0], ks[2], ks[3]):
        want = crc32c.crc32c(s.be.get("key", k), crc32c.crc32c(k, want))
    assert s.hash_kv(6) == (want, 6, 4)
    # at 5 the same (y deleted at 5); the tombstone itself is above compact_rev so hashed
    want5 = crc32c.crc32c(b"key")
    for k in (ks[0], ks[2]):
        want5 = crc32c.crc32c(s.be.get("key", k), crc32c.crc32c(k, want5))
    assert s.hash_kv(5) == (want5, 6, 4)


def test_restart_reproduces_state(s, factory):
    put(s, b"a", b"1", lease=5)
    tw = s.write()
    tw.put(b"b", b"1")
    tw.put(b"c", b"1")
    tw.end()
    delete(s, b"b")
    put(s, b"b", b"2")
    put(s, b"a", b"2")
    s.compact(3)
    delete(s, b"c")
    snap = {r: [kvt(m) for m in s.range(b"\x00", b"\x00", rev=r).kvs] for r in range(3, s.rev + 1)}
    h, rv_, cr = s.hash_kv()
    s.be.set_consistent_index(99, 2)
    s2 = reopen(s, factory)
    assert s2.restored_leases == {}  # a@2 had lease 5, but a@6 has none
    assert (s2.rev, s2.compact_rev) == (7, 3)
    assert s2.be.consistent_index == 99
    assert {r: [kvt(m) for m in s2.range(b"\x00", b"\x00", rev=r).kvs] for r in range(3, 8)} == snap
    assert s2.hash_kv() == (h, rv_, cr)
    put(s2, b"b", b"3")  # continues the generation
    assert kvt(s2.range(b"b").kvs[0]) == (b"b", b"3", 5, 8, 2, 0)
    s2.be.close()


def test_restart_reports_leases_of_live_keys(s, factory):
    put(s, b"a", b"1", lease=5)
    put(s, b"b", b"1", lease=6)
    put(s, b"c", b"1", lease=7)
    delete(s, b"b")
    put(s, b"c", b"2", lease=8)
    s2 = reopen(s, factory)
    assert s2.restored_leases == {b"a": 5, b"c": 8}
    s2.close()


def test_restart_when_compaction_removed_the_latest_revisions(s, factory):
    put(s, b"a", b"1")   # 2
    delete(s, b"a")      # 3
    s.compact(3)         # removes everything
    assert s.be.keys("key", b"", b"\xff") == []
    s2 = reopen(s, factory)
    assert (s2.rev, s2.compact_rev) == (3, 3)
    s2.be.close()


def test_restart_resumes_interrupted_compaction(s, factory):
    for v in (b"1", b"2", b"3"):
        put(s, b"a", v)  # 2, 3, 4
    # a compaction that was scheduled (persisted) but never ran
    s.be.put("meta", kvs_mod.SCHEDULED_COMPACT_KEY, main_rev_bytes(3))
    s2 = reopen(s, factory)
    assert s2.compact_rev == 3
    assert [rev_main(bytes_to_rev(k)) for k in s2.be.keys("key", b"", b"\xff")] == [3, 4]
    assert s2.be.get("meta", kvs_mod.FINISHED_COMPACT_KEY) == main_rev_bytes(3)
    s2.be.close()


def test_history_events(s):
    put(s, b"a", b"1")
    tw = s.write()
    tw.put(b"b", b"1")
    tw.delete_range(b"a")
    tw.end()
    evs = s.history(2)
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in evs] == [
        (mvccpb.Event.PUT, b"a", 2), (mvccpb.Event.PUT, b"b", 3), (mvccpb.Event.DELETE, b"a", 3)]
    assert [e.kv.key for e in s.history(3, 3)] == [b"b", b"a"]


def test_context_manager_ends_txn(s):
    with s.write() as tw:
        tw.put(b"a", b"1")
    assert s.rev == 2
    with pytest.raises(RuntimeError):
        tw.end()


def test_value_cache_size_does_not_change_results(tmp_path, factory):
    """The same random history through stores with no, a tiny and a large value cache."""
    import random

    stores = [KVStore(Backend(str(tmp_path / f"db{n}")), index_factory=factory, cache_bytes=n)
              for n in (0, 600, 64 << 20)]
    rnd = random.Random(5)
    keys = [b"k%d" % i for i in range(12)]
    compacted = 0
    for step in range(300):
        op = rnd.random()
        k = rnd.choice(keys)
        v = rnd.randbytes(rnd.randint(0, 200))
        end = rnd.choice([b"", b"k5"])
        results = []
        for st in stores:
            tw = st.write()
            if op < 0.6:
                p = tw.put(k, v)
                results.append(None if p is None else p.SerializeToString())
            else:
                results.append([m.SerializeToString() for m in tw.delete_range(k, end)])
            tw.end()
        assert results[0] == results[1] == results[2]
        if step % 50 == 49:
            compacted = rnd.randint(compacted + 1, stores[0].rev)
            for st in stores:
                st.compact(compacted)
        at = rnd.randint(max(compacted, 1), stores[0].rev)
        got = [[m.SerializeToString() for m in st.range(b"\x00", b"\x00", rev=at).kvs] for st in stores]
        assert got[0] == got[1] == got[2]
        raw = stores[2].range(b"\x00", b"\x00", rev=at, raw=True)
        assert raw.kvs == got[2] and raw.count == len(got[2])
    assert len({st.hash_kv() for st in stores}) == 1
    assert stores[0]._cache == {} and len(stores[2]._cache) > 0
    for st in stores:
        st.be.close()


def test_background_compaction_in_steps(path, factory):
    st = KVStore(Backend(path), index_factory=factory, compaction_batch_limit=4)
    for i in range(20):
        put(st, b"k%d" % (i % 3), b"%d" % i)   # revs 2..21
    before = st.range(b"\x00", b"\x00", rev=15)
    h = st.hash_kv(21)
    st.compact(15, wait=False)
    assert st.compaction_pending and st.compact_rev == 15
    with pytest.raises(type(ErrCompacted)):
        st.range(b"k1", rev=14)  # reads below are refused at once
    assert [kvt(m) for m in st.range(b"\x00", b"\x00", rev=15).kvs] == [kvt(m) for m in before.kvs]
    put(st, b"k9", b"x")          # writes go on meanwhile
    assert st.be.get("meta", kvs_mod.FINISHED_COMPACT_KEY) is None
    h_pending = st.hash_kv()      # the hash does not depend on how far the deletes got
    steps = 1
    while not st.compact_step():
        steps += 1
    assert steps == 4  # 14 revisions at or below 15, 4 per batch
    assert not st.compaction_pending
    assert st.hash_kv() == h_pending
    assert [rev_main(bytes_to_rev(k)) for k in st.be.keys("key", b"", b"\xff")] == [13, 14, 15, 16, 17, 18,
                                                                                     19, 20, 21, 22]
    assert st.be.get("meta", kvs_mod.FINISHED_COMPACT_KEY) == main_rev_bytes(15)
    # the hash equals that of a store compacted in one go
    other = KVStore(Backend(path + "2"), index_factory=factory)
    for i in range(20):
        put(other, b"k%d" % (i % 3), b"%d" % i)
    other.compact(15)
    put(other, b"k9", b"x")
    assert other.hash_kv(21) == st.hash_kv(21)
    assert st.hash_kv(21)[0] != h[0]  # compaction changed what is hashed (compact_rev moved)
    st.compact(17, wait=False)
    st.compact(19)  # finishes the pending one first
    assert not st.compaction_pending and st.compact_rev == 19
    assert st.be.get("meta", kvs_mod.FINISHED_COMPACT_KEY) == main_rev_bytes(19)
    other.close()
    st.close()


def test_readers_in_other_threads_never_see_half_a_txn(s):
    import threading

    keys = [b"k%d" % i for i in range(5)]
    stop = threading.Event()
    seen = []
    errors = []

    def reader():
        while not stop.is_set():
            r = s.range(b"k", b"l")
            vals = {m.value for m in r.kvs}
            if r.count not in (0, 5) or len(vals) > 1 or any(m.mod_revision != r.rev for m in r.kvs):
                errors.append((r.count, vals, r.rev))
            seen.append(r.rev)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for n in range(200):
            tw = s.write()
            for k in keys:
                tw.put(k, b"%d" % n)
            tw.end()
    finally:
        stop.set()
        t.join(30)
    assert errors == []
    assert seen and all(a <= b for a, b in zip(seen, seen[1:]))  # revisions never go back


def test_delete_range_end_semantics(s):
    tw = s.write()
    for k in [b"a", b"b", b"c", b"d"]:
        tw.put(k, k)
    tw.end()
    assert [m.key for m in delete(s, b"c", b"\x00")] == [b"c", b"d"]   # every key >= c
    assert [m.key for m in delete(s, b"a", b"b")] == [b"a"]            # [a, b)
    assert delete(s, b"z", b"a") == []                                 # end before key
    assert [m.key for m in delete(s, b"\x00", b"\x00")] == [b"b"]      # everything left
    assert s.range(b"\x00", b"\x00").count == 0
    assert s.rev == 5
