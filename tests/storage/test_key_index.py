"""The key index (etcd's keyIndex/treeIndex), for both the plain Python and the native build."""
from __future__ import annotations

import random

import pytest

from pyetcd.storage.mvcc.index import NativeTreeIndex, PyTreeIndex
from pyetcd.storage.mvcc.revision import (bytes_to_rev, py_bytes_to_rev, py_rev_to_bytes,
                                          py_tombstone_bytes, rev, rev_to_bytes, tombstone_bytes)

IMPLS = [pytest.param(PyTreeIndex, id="py"),
         pytest.param(NativeTreeIndex, id="native",
                      marks=pytest.mark.skipif(NativeTreeIndex is None, reason="native not built"))]


@pytest.fixture(params=IMPLS)
def Index(request):
    return request.param


def R(main, sub=0):
    return rev(main, sub)


def _foo(Index):
    """etcd's documented example: put(1.0);put(2.0);tombstone(3.0);put(4.0);tombstone(5.0)."""
    ti = Index()
    ti.put(b"foo", R(1))
    ti.put(b"foo", R(2))
    assert ti.tombstone(b"foo", R(3))
    ti.put(b"foo", R(4))
    assert ti.tombstone(b"foo", R(5))
    return ti


def test_revision_bytes():
    for impl in ((rev_to_bytes, tombstone_bytes, bytes_to_rev),
                 (py_rev_to_bytes, py_tombstone_bytes, py_bytes_to_rev)):
        enc, tomb, dec = impl
        b = enc(R(0x0102030405, 7))
        assert b == bytes.fromhex("0000000102030405") + b"_" + bytes.fromhex("0000000000000007")
        assert tomb(R(5, 1)) == enc(R(5, 1)) + b"t"
        assert dec(b) == R(0x0102030405, 7)
        assert dec(tomb(R(9, 3))) == R(9, 3)
    revs = sorted({R(random.randrange(1, 1 << 38), random.randrange(0, 300)) for _ in range(500)})
    assert sorted(revs, key=rev_to_bytes) == revs  # byte order is revision order


def test_get_follows_generations(Index):
    ti = _foo(Index)
    assert ti.get(b"foo", 0) is None
    assert ti.get(b"foo", 1) == (R(1), R(1), 1)
    assert ti.get(b"foo", 2) == (R(2), R(1), 2)
    assert ti.get(b"foo", 3) is None  # deleted at 3
    assert ti.get(b"foo", 4) == (R(4), R(4), 1)  # a new generation starts at version 1
    assert ti.get(b"foo", 5) is None
    assert ti.get(b"foo", 100) is None
    assert ti.get(b"bar", 5) is None
    assert not ti.tombstone(b"foo", R(6))  # already deleted
    assert not ti.tombstone(b"bar", R(6))


def test_sub_revisions_in_one_txn(Index):
    ti = Index()
    ti.put(b"k", R(2, 0))
    ti.put(b"k", R(2, 1))
    assert ti.get(b"k", 2) == (R(2, 1), R(2, 0), 2)
    assert ti.tombstone(b"k", R(3, 0))
    ti.put(b"k", R(3, 1))  # deleted and re-created in the same txn
    assert ti.get(b"k", 3) == (R(3, 1), R(3, 1), 1)
    assert ti.generations(b"k") == [(R(2), 3, [R(2), R(2, 1), R(3)]), (R(3, 1), 1, [R(3, 1)])]
    with pytest.raises(ValueError):
        ti.put(b"k", R(3, 1))  # not above the last revision


def test_compact_as_etcd_documents(Index):
    ti = _foo(Index)
    assert ti.compact(2) == {R(2)}
    assert [g[2] for g in ti.generations(b"foo")] == [[R(2), R(3)], [R(4), R(5)], []]
    assert ti.get(b"foo", 2) == (R(2), R(1), 2)  # created and version survive compaction
    assert ti.compact(4) == {R(4)}
    assert [g[2] for g in ti.generations(b"foo")] == [[R(4), R(5)], []]
    assert ti.compact(5) == set()  # the tombstone is not kept
    assert ti.generations(b"foo") is None  # and the key is gone
    assert len(ti) == 0


def test_compact_at_tombstone_and_in_gap(Index):
    ti = _foo(Index)
    assert ti.compact(3) == set()  # at the first tombstone: the whole first generation goes
    assert [g[2] for g in ti.generations(b"foo")] == [[R(4), R(5)], []]
    ti = _foo(Index)
    assert ti.compact(6) == set()
    assert len(ti) == 0


def test_keep_does_not_modify(Index):
    ti = _foo(Index)
    before = ti.generations(b"foo")
    assert ti.keep(2) == {R(2)}
    assert ti.keep(3) == set()
    assert ti.keep(4) == {R(4)}
    assert ti.keep(5) == set()
    assert ti.keep(1) == {R(1)}
    assert ti.generations(b"foo") == before
    ti.put(b"live", R(6))
    assert ti.keep(7) == {R(6)}


def test_range_revisions_and_counts(Index):
    ti = Index()
    for i, k in enumerate([b"a", b"b", b"c", b"d"]):
        ti.put(k, R(i + 2))
    ti.tombstone(b"b", R(6))
    assert ti.revisions(b"a", b"", 6) == ([R(2), R(4), R(5)], 3)
    assert ti.revisions(b"a", b"", 6, 2) == ([R(2), R(4)], 3)
    assert ti.revisions(b"a", b"", 5) == ([R(2), R(3), R(4), R(5)], 4)
    assert ti.revisions(b"a", b"c", 5) == ([R(2), R(3)], 2)
    assert ti.revisions(b"b", None, 6) == ([], 0)
    assert ti.revisions(b"c", None, 6) == ([R(4)], 1)
    assert ti.revisions(b"c", b"a", 6) == ([], 0)  # end before key
    assert ti.count_revisions(b"a", b"", 6) == 3
    assert ti.count_revisions(b"a", b"", 3) == 2
    assert ti.count_revisions(b"d", None, 4) == 0
    assert ti.range(b"a", b"\xff", 6) == ([b"a", b"c", b"d"], [R(2), R(4), R(5)])
    assert ti.keys() == [b"a", b"b", b"c", b"d"]


def test_restore_rev_rebuilds_like_puts(Index):
    ti = Index()
    # a compacted history: rev 5 survives with version 3, created at 2
    ti.restore_rev(b"k", R(5), False, R(2), 3)
    ti.restore_rev(b"k", R(6), True, 0, 0)
    ti.restore_rev(b"k", R(7), False, R(7), 1)
    ti.restore_rev(b"gone", R(8), True, 0, 0)  # a tombstone of an unknown key is ignored
    assert ti.get(b"k", 5) == (R(5), R(2), 3)
    assert ti.get(b"k", 6) is None
    assert ti.get(b"k", 7) == (R(7), R(7), 1)
    assert ti.generations(b"gone") is None


def test_random_against_model(Index):
    """Random puts/deletes/compactions against a brute-force model of key history."""
    rnd = random.Random(11)
    ti = Index()
    hist: dict[bytes, list] = {}  # key -> [(main, sub, alive, created, ver)]
    compacted = 0
    keys = [bytes([c]) for c in b"abcdefg"]
    for main in range(2, 400):
        for sub in range(rnd.randint(1, 3)):
            k = rnd.choice(keys)
            h = hist.setdefault(k, [])
            alive = bool(h) and h[-1][2]
            if rnd.random() < 0.7:
                created = h[-1][3] if alive else R(main, sub)
                ver = h[-1][4] + 1 if alive else 1
                ti.put(k, R(main, sub))
                h.append((main, sub, True, created, ver))
            else:
                assert ti.tombstone(k, R(main, sub)) == alive
                if alive:
                    h.append((main, sub, False, 0, 0))
        if rnd.random() < 0.05:
            compacted = rnd.randint(compacted, main)
            ti.compact(compacted)
        for at in (main, rnd.randint(max(compacted, 1), main)):
            for k in keys:
                want = None
                for m, s, alive, created, ver in hist.get(k, []):
                    if m <= at:
                        want = (R(m, s), created, ver) if alive else None
                assert ti.get(k, at) == want, (k, at)


@pytest.mark.skipif(NativeTreeIndex is None, reason="native not built")
def test_native_keyvalue_encoding_matches_protobuf():
    from pyetcd._native.mvcc_index import encode_kv, encode_put_event
    from pyetcd.pb import kv as mvccpb

    rnd = random.Random(3)
    cases = [(b"", b"", 0, 0, 0, 0), (b"k", b"", 1, 1, 1, 0), (b"\x00" * 200, b"v" * 300, 2, 3, 4, 5),
             (b"k", b"v", 2**40, 2**39 + 1, 2**62, 2**63 - 1), (b"k", b"v", 5, 6, 7, -1)]
    for _ in range(300):
        cases.append((rnd.randbytes(rnd.randint(0, 40)), rnd.randbytes(rnd.choice([0, 1, 127, 128, 20000])),
                      rnd.choice([0, rnd.randint(1, 2**40)]), rnd.randint(0, 2**35),
                      rnd.randint(0, 300), rnd.choice([0, rnd.randint(1, 2**63 - 1)])))
    for key, value, c, m, ver, lease in cases:
        want = mvccpb.KeyValue(key=key, value=value, create_revision=c, mod_revision=m, version=ver,
                               lease=lease)
        assert encode_kv(key, value, c, m, ver, lease) == want.SerializeToString()
        kvb, evb = encode_put_event(key, value, c, m, ver, lease)
        assert kvb == want.SerializeToString()
        assert evb == mvccpb.Event(type=mvccpb.Event.PUT, kv=want).SerializeToString()
    with pytest.raises(TypeError):
        encode_kv(None, b"", 0, 0, 0, 0)


@pytest.mark.skipif(NativeTreeIndex is None, reason="native not built")
def test_native_decode_kv_head():
    from pyetcd._native.mvcc_index import decode_kv_head, encode_kv
    from pyetcd.pb import kv as mvccpb

    rnd = random.Random(4)
    for _ in range(300):
        key, value = rnd.randbytes(rnd.randint(0, 30)), rnd.randbytes(rnd.choice([0, 5, 300]))
        c, m, ver, lease = rnd.randint(0, 2**40), rnd.randint(0, 2**40), rnd.randint(0, 999), rnd.randint(0, 2**62)
        data = encode_kv(key, value, c, m, ver, lease)
        assert decode_kv_head(data) == (key, c, ver, lease)
    assert decode_kv_head(mvccpb.KeyValue(key=b"t").SerializeToString()) == (b"t", 0, 0, 0)
    with pytest.raises(ValueError):
        decode_kv_head(encode_kv(b"key", b"value", 1, 2, 3, 0)[:-2])
