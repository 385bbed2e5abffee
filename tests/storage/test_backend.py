"""The SQLite backend: buckets, batch transaction, consistent index, snapshot, defrag."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from pyetcd.storage.backend import BUCKETS, Backend


@pytest.fixture
def be(tmp_path):
    b = Backend(str(tmp_path / "member" / "snap" / "db"))
    yield b
    b.close()


def _committed(path, bucket, key):
    """What another connection sees: only committed data."""
    c = sqlite3.connect(path)
    try:
        row = c.execute(f'SELECT v FROM "{bucket}" WHERE k = ?', (key,)).fetchone()
        return None if row is None else row[0]
    finally:
        c.close()


def test_creates_etcd_buckets(be):
    c = sqlite3.connect(be.path)
    tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    c.close()
    assert {"key", "meta", "lease", "members", "alarm", "auth", "authUsers", "authRoles"} <= tables
    assert set(BUCKETS) <= tables


def test_put_get_delete_and_unknown_bucket(be):
    assert be.get("key", b"x") is None
    be.put("key", b"x", b"1")
    be.put("key", b"x", b"2")  # overwrite
    assert be.get("key", b"x") == b"2"
    be.delete("key", b"x")
    assert be.get("key", b"x") is None
    with pytest.raises(KeyError):
        be.put("nope", b"x", b"1")


def test_range_is_byte_ordered_and_bounded(be):
    keys = [b"\xff", b"a\x00", b"a", b"", b"\x00", b"ab", b"b"]
    for i, k in enumerate(keys):
        be.put("lease", k, bytes([i]))
    assert [k for k, _ in be.range("lease")] == sorted(keys)
    assert [k for k, _ in be.range("lease", b"a", b"b")] == [b"a", b"a\x00", b"ab"]
    assert [k for k, _ in be.range("lease", b"a", None, limit=2)] == [b"a", b"a\x00"]
    assert dict(be.range("lease"))[b"ab"] == bytes([5])
    assert be.keys("lease", b"\x00", b"b") == [b"\x00", b"a", b"a\x00", b"ab"]


def test_range_crosses_chunks(be):
    be.put_many("key", [(i.to_bytes(4, "big"), b"v") for i in range(2500)])
    got = [k for k, _ in be.range("key", (10).to_bytes(4, "big"), (2400).to_bytes(4, "big"))]
    assert got == [i.to_bytes(4, "big") for i in range(10, 2400)]
    assert len(list(be.range("key", b"", None, limit=1500))) == 1500


def test_reads_see_uncommitted_batch_others_do_not(be):
    be.put("key", b"k", b"v")
    assert be.get("key", b"k") == b"v"
    assert be.pending == 1
    assert _committed(be.path, "key", b"k") is None
    be.force_commit()
    assert be.pending == 0
    assert _committed(be.path, "key", b"k") == b"v"


def test_batch_limit_and_interval_commit(tmp_path):
    b = Backend(str(tmp_path / "db"), batch_limit=3, batch_interval=3600)
    b.put("key", b"1", b"x")
    b.put("key", b"2", b"x")
    assert not b.commit_if_due()  # interval not reached
    assert _committed(b.path, "key", b"1") is None
    b.put("key", b"3", b"x")  # third write reaches the limit
    assert _committed(b.path, "key", b"1") == b"x"
    b.batch_interval = 0
    b.put("key", b"4", b"x")
    assert b.commit_if_due()
    assert _committed(b.path, "key", b"4") == b"x"
    assert not b.commit_if_due()  # nothing pending
    b.close()


def test_consistent_index_persists(tmp_path):
    p = str(tmp_path / "db")
    b = Backend(p)
    assert (b.consistent_index, b.term) == (0, 0)
    b.set_consistent_index(42, 3)
    assert (b.consistent_index, b.term) == (42, 3)
    b.close()
    b = Backend(p)
    assert (b.consistent_index, b.term) == (42, 3)
    assert b.get("meta", b"consistent_index") == (42).to_bytes(8, "big")
    b.close()


def test_crash_loses_whole_uncommitted_batch_with_its_index(tmp_path):
    """Data and consistent index commit together, so a crash leaves them consistent."""
    p = str(tmp_path / "db")
    script = textwrap.dedent(f"""
        import os
        from pyetcd.storage.backend import Backend
        b = Backend({p!r}, batch_interval=3600)
        b.put("key", b"a", b"1"); b.set_consistent_index(5, 1); b.force_commit()
        b.put("key", b"b", b"2"); b.set_consistent_index(6, 1)
        os._exit(0)  # crash: no commit
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    b = Backend(p)
    assert b.consistent_index == 5
    assert b.get("key", b"a") == b"1"
    assert b.get("key", b"b") is None
    b.close()


def test_snapshot_is_consistent_copy(be, tmp_path):
    be.put("key", b"a", b"1")
    be.set_consistent_index(7, 2)
    dest = str(tmp_path / "snap.db")
    be.snapshot(dest)
    be.put("key", b"b", b"2")  # after the snapshot
    c = Backend(dest)
    assert c.get("key", b"a") == b"1"
    assert c.get("key", b"b") is None
    assert c.consistent_index == 7
    c.close()


def test_defrag_shrinks_after_deletes(be):
    be.put_many("key", [(i.to_bytes(4, "big"), os.urandom(200)) for i in range(5000)])
    be.force_commit()
    be.delete_many("key", [i.to_bytes(4, "big") for i in range(5000) if i % 10])
    be.force_commit()
    before, in_use = be.size(), be.size_in_use()
    assert 0 < in_use < before
    be.defrag()
    assert be.size() < before
    assert be.size_in_use() <= be.size()
    assert len(list(be.range("key"))) == 500
    assert be.get("key", (10).to_bytes(4, "big")) is not None


def test_write_buffer_merges_with_committed_data(be):
    be.put("key", b"a", b"1")
    be.put("key", b"b", b"2")
    be.force_commit()
    be.delete("key", b"a")        # buffered delete of a committed key
    be.put("key", b"c", b"3")     # buffered put
    be.put("key", b"d", b"4")
    be.delete("key", b"d")        # put then delete in the same batch
    assert be.get("key", b"a") is None
    assert be.get_many("key", [b"a", b"b", b"c", b"d"]) == [None, b"2", b"3", None]
    assert list(be.range("key")) == [(b"b", b"2"), (b"c", b"3")]
    be.put("key", b"a", b"5")     # re-put after the flush the range caused
    assert be.keys("key", b"", b"\xff") == [b"a", b"b", b"c"]
    be.force_commit()
    assert _committed(be.path, "key", b"a") == b"5"
    assert _committed(be.path, "key", b"d") is None


def test_hash_covers_data_not_consistent_index(tmp_path):
    import crc32c

    a = Backend(str(tmp_path / "a"))
    b = Backend(str(tmp_path / "b"))
    for be in (a, b):
        be.put("key", b"k", b"v")
        be.put("lease", b"l", b"1")
    a.set_consistent_index(10, 2)
    b.set_consistent_index(99, 3)
    assert a.hash() == b.hash()
    assert a.hash(ignore_consistent_index=False) != b.hash(ignore_consistent_index=False)
    # what it covers, spelled out for a backend with two non-empty buckets
    want = 0
    for name in sorted(BUCKETS, key=str.encode):
        want = crc32c.crc32c(name.encode(), want)
        if name == "key":
            want = crc32c.crc32c(b"kv", want)
        elif name == "lease":
            want = crc32c.crc32c(b"l1", want)
    assert a.hash() == want
    b.put("key", b"k", b"w")
    assert a.hash() != b.hash()
    a.close()
    b.close()
