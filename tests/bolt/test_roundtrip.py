"""pyetcd.bolt: files written by write_file read back exactly, pass check(), and have the shape
bbolt gives them (inline small buckets, branch levels, overflow pages, both metas)."""
from __future__ import annotations

import os
import random
import struct
import tracemalloc

import pytest

from pyetcd import bolt
from pyetcd.bolt.check import check, free_page_count
from pyetcd.bolt.format import BRANCH, LEAF, META, PAGE_HEADER, pack_meta


def _random_buckets(rng: random.Random, nbuckets: int, max_keys: int, max_value: int):
    names = sorted({rng.randbytes(rng.randint(1, 12)) for _ in range(nbuckets)})
    out = []
    for name in names:
        n = rng.choice([0, 1, 3, rng.randint(0, max_keys)])
        keys = sorted({rng.randbytes(rng.randint(1, 40)) for _ in range(n)})
        out.append((name, [(k, rng.randbytes(rng.choice([0, 1, 10, rng.randint(0, max_value)])))
                           for k in keys]))
    return out


def _assert_reads_back(path, buckets):
    with bolt.open_file(path) as db:
        assert check(db) == []
        assert db.bucket_names() == [n for n, _ in buckets]
        for name, items in buckets:
            assert list(db.items(name)) == items
            for k, v in items[:: max(1, len(items) // 50)]:
                assert db.get(name, k) == v
            assert db.get(name, b"\xff" * 41) is None
        assert db.size == os.path.getsize(path)


@pytest.mark.parametrize("seed", range(8))
def test_random_bucket_sets_round_trip(tmp_path, seed):
    rng = random.Random(seed)
    buckets = _random_buckets(rng, rng.randint(0, 12), 600, 3000)
    path = str(tmp_path / "db")
    size = bolt.write_file(path, buckets, page_size=rng.choice([1024, 4096, 8192]),
                           fill_percent=rng.choice([0.1, 0.5, 0.9, 1.0]))
    assert size == os.path.getsize(path)
    _assert_reads_back(path, buckets)


def test_no_buckets_is_bbolts_fresh_file(tmp_path):
    path = str(tmp_path / "db")
    # bbolt's init: meta, meta, freelist, empty root leaf
    assert bolt.write_file(path, []) == 4 * 4096
    with bolt.open_file(path) as db:
        assert db.bucket_names() == [] and check(db) == []
        assert db.meta.hwm == 4 and db.meta.freelist == 2 and db.meta.txid == 1
        assert [m.txid for m in db.metas] == [0, 1]
        assert PAGE_HEADER.unpack_from(db.data, 0)[1] == META
        assert free_page_count(db) == 0


def _root_page(db, name):
    hdr = dict(db.buckets())[name]
    return struct.unpack_from("<Q", hdr, 0)[0]


def test_small_buckets_inline_large_ones_paged(tmp_path):
    path = str(tmp_path / "db")
    small = [(b"a", b"1"), (b"b", b"2")]
    large = [(b"k%04d" % i, b"v" * 50) for i in range(40)]
    buckets = [(b"empty", []), (b"large", large), (b"small", small)]
    bolt.write_file(path, buckets)
    _assert_reads_back(path, buckets)
    with bolt.open_file(path) as db:
        assert _root_page(db, b"empty") == 0
        assert _root_page(db, b"small") == 0
        assert _root_page(db, b"large") >= 3


def test_huge_value_spans_overflow_pages(tmp_path):
    path = str(tmp_path / "db")
    huge = os.urandom(5 * 4096 + 123)
    buckets = [(b"b", [(b"a", b"x"), (b"big", huge), (b"c", b"y" * 3000), (b"d", b"z")])]
    bolt.write_file(path, buckets)
    _assert_reads_back(path, buckets)
    with bolt.open_file(path) as db:
        overflows = [PAGE_HEADER.unpack_from(db.data, pgid * db.page_size)[3]
                     for pgid in range(3, db.max_pgid)
                     if PAGE_HEADER.unpack_from(db.data, pgid * db.page_size)[0] == pgid]
        assert max(overflows) >= 5


def test_many_keys_make_multi_level_branches(tmp_path):
    path = str(tmp_path / "db")
    items = [(struct.pack(">QcQ", rev, b"_", 0), b"%d" % rev) for rev in range(1, 30001)]
    bolt.write_file(path, [(b"key", items)])
    _assert_reads_back(path, [(b"key", items)])
    with bolt.open_file(path) as db:
        root = _root_page(db, b"key")
        depth, pgid = 0, root
        while True:
            _id, flags, count, _ovf = PAGE_HEADER.unpack_from(db.data, pgid * db.page_size)
            if flags & LEAF:
                break
            assert flags & BRANCH and count >= 2
            depth += 1
            pgid = struct.unpack_from("<Q", db.data, pgid * db.page_size + 16 + 8)[0]
        assert depth >= 2


def test_binary_keys_sort_bytewise(tmp_path):
    rng = random.Random(7)
    keys = sorted({rng.randbytes(rng.randint(1, 9)) for _ in range(3000)} | {b"\x00", b"\xff" * 9})
    items = [(k, k[::-1] * 3) for k in keys]
    path = str(tmp_path / "db")
    bolt.write_file(path, [(b"\x00bin", items), (b"\xffbin", items[:5])])
    _assert_reads_back(path, [(b"\x00bin", items), (b"\xffbin", items[:5])])


@pytest.mark.parametrize("buckets,match", [
    ([(b"b", [(b"b", b""), (b"a", b"")])], "ascending"),
    ([(b"b", [(b"a", b""), (b"a", b"")])], "ascending"),
    ([(b"b", []), (b"a", [])], "ascending"),
    ([(b"b", []), (b"b", [])], "ascending"),
    ([(b"b", [(b"", b"v")])], "empty key"),
    ([(b"", [])], "empty bucket name"),
    ([(b"b", [(b"k" * 32769, b"")])], "exceeds"),
])
def test_bad_input_raises_value_error(tmp_path, buckets, match):
    with pytest.raises(ValueError, match=match):
        bolt.write_file(str(tmp_path / "db"), buckets)


def test_values_stream_from_the_iterator(tmp_path):
    """200 values of 256 KiB (50 MiB in all) are written holding only a few at a time."""
    chunk = 256 * 1024

    def items():
        for i in range(200):
            yield b"%05d" % i, bytes([i % 251]) * chunk
    path = str(tmp_path / "db")
    tracemalloc.start()
    try:
        bolt.write_file(path, [(b"big", items())])
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * chunk
    with bolt.open_file(path) as db:
        got = list(db.items(b"big"))
    assert [k for k, _ in got] == [b"%05d" % i for i in range(200)]
    assert all(v == bytes([i % 251]) * chunk for i, (_k, v) in enumerate(got))


def test_reader_uses_the_valid_meta_with_the_higher_txid(tmp_path):
    path = str(tmp_path / "db")
    bolt.write_file(path, [(b"b", [(b"k", b"v")])])
    with open(path, "r+b") as f:  # page 1 (txid 1) corrupt: bbolt falls back to page 0
        f.seek(4096 + 16 + 8)
        f.write(b"\x01")
    with bolt.open_file(path) as db:
        assert db.meta.txid == 0 and list(db.items(b"b")) == [(b"k", b"v")]
    with open(path, "r+b") as f:
        f.seek(16 + 8)
        f.write(b"\x01")
    with pytest.raises(bolt.BoltError, match="checksum error"):
        bolt.open_file(path)


def test_open_errors_as_bbolt_reports_them(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"hello")
    with pytest.raises(bolt.BoltError, match="invalid database"):
        bolt.open_file(str(p))
    p.write_bytes(b"not a bbolt file\n" * 300)
    with pytest.raises(bolt.BoltError, match="file size too small"):
        bolt.open_file(str(p))
    p.write_bytes(b"\0" * 3 * 4096)
    with pytest.raises(bolt.BoltError, match="invalid database"):
        bolt.open_file(str(p))


def _rewrite_metas(path, **changes):
    with bolt.open_file(path) as db:
        m = db.meta
    args = dict(root=m.root, freelist=m.freelist, hwm=m.hwm)
    args.update(changes)
    with open(path, "r+b") as f:
        for i in (0, 1):
            f.seek(i * m.page_size)
            f.write(pack_meta(i, m.page_size, args["root"], args["freelist"], args["hwm"], i))


def test_check_reports_unreachable_and_doubly_referenced_pages(tmp_path):
    path = str(tmp_path / "db")
    items = [(b"%06d" % i, b"v" * 100) for i in range(2000)]
    bolt.write_file(path, [(b"key", items)])
    with bolt.open_file(path) as db:
        hwm = db.meta.hwm
        root = _root_page(db, b"key")
    with open(path, "ab") as f:
        f.write(bytes(4096))
    _rewrite_metas(path, hwm=hwm + 1)
    with bolt.open_file(path) as db:
        assert check(db) == [f"page {hwm}: unreachable unfreed"]
    # point the branch's second child at its first: that page is referenced twice, the
    # real second child is unreachable, and its keys sit below the second branch key's range
    with open(path, "r+b") as f:
        f.seek(root * 4096 + 16 + 8)
        first_child = struct.unpack("<Q", f.read(8))[0]
        f.seek(root * 4096 + 16 + 16 + 8)
        second_child = struct.unpack("<Q", f.read(8))[0]
        f.seek(root * 4096 + 16 + 16 + 8)
        f.write(struct.pack("<Q", first_child))
    with bolt.open_file(path) as db:
        errors = check(db)
        strict = check(db, key_order=True)
    assert f"page {first_child}: multiple references" in errors
    assert f"page {second_child}: unreachable unfreed" in errors
    assert not any("branch key" in e for e in errors)  # bbolt 1.3.6 checks no key order
    assert any(e.startswith(f"page {first_child}: key[0]=") and "below its branch key" in e
               for e in strict)
