"""kill -9 a pyetcd member under write load, again and again: nothing acknowledged is lost.

Each writer puts keys nobody else writes, once each, and records the revision etcd's answer
gave it. After every restart: each acknowledged key is present with exactly that mod_revision;
the revisions of all keys present are 2..current without a gap (one put per revision); new
writes continue from there. Then the WAL itself: a torn tail is repaired, a corrupt middle is
refused with a clear error.
"""
import glob
import os
import random
import signal
import threading
import time

import grpc
import pytest

from pyetcd.pb import rpc, rpc_grpc
from pyetcd.testing import procs

CYCLES = int(os.environ.get("PYETCD_CRASH_CYCLES", "10"))
WRITERS = 6


def _writer(endpoint, prefix, acked, stop):
    ch = grpc.insecure_channel(endpoint)
    kv = rpc_grpc.KVStub(ch)
    i = 0
    while not stop.is_set():
        key = b"%s/%06d" % (prefix, i)
        i += 1
        try:
            r = kv.Put(rpc.PutRequest(key=key, value=key), timeout=2)
        except grpc.RpcError:
            break  # the member died; whatever was not answered is indeterminate
        acked[key] = r.header.revision
    ch.close()


def _check(endpoint, acked):
    ch = grpc.insecure_channel(endpoint)
    kv = rpc_grpc.KVStub(ch)
    r = kv.Range(rpc.RangeRequest(key=b"w", range_end=b"x"), timeout=10)
    ch.close()
    present = {x.key: x for x in r.kvs}
    for key, rev in acked.items():
        assert key in present, f"acknowledged write {key!r} at revision {rev} was lost"
        assert present[key].mod_revision == rev, (key, rev, present[key].mod_revision)
        assert present[key].value == key
    revs = sorted(x.mod_revision for x in r.kvs)
    assert revs == list(range(2, r.header.revision + 1)), "revisions have a gap or a duplicate"
    return r.header.revision


def test_kill9_under_load_loses_nothing(tmp_path):
    rnd = random.Random(int(os.environ.get("PYETCD_CRASH_SEED", "7")))
    m = procs.member("pyetcd", str(tmp_path))
    acked: dict = {}
    last_rev = 1
    try:
        for cycle in range(CYCLES):
            m.start()
            last_rev = _check(m.endpoint, acked)
            stop = threading.Event()
            threads = [threading.Thread(target=_writer, args=(m.endpoint, b"w%02d-%d" % (cycle, w), acked, stop))
                       for w in range(WRITERS)]
            for t in threads:
                t.start()
            time.sleep(rnd.uniform(0.2, 1.2))
            m.kill(signal.SIGKILL)
            stop.set()
            for t in threads:
                t.join(10)
        m.start()
        final = _check(m.endpoint, acked)
    finally:
        m.stop()
    assert final >= last_rev and len(acked) > CYCLES * 20, (final, len(acked))


def _used_bytes(path) -> int:
    """Bytes written to a WAL segment (segments are preallocated with zeros)."""
    with open(path, "rb") as f:
        return len(f.read().rstrip(b"\0"))


def _wal_files(m):
    return sorted(glob.glob(os.path.join(m.data_dir, "member", "wal", "*.wal")))


def _put_some(m, n, acked):
    ch = grpc.insecure_channel(m.endpoint)
    kv = rpc_grpc.KVStub(ch)
    base = len(acked)
    for i in range(n):
        key = b"w/torn/%04d" % (base + i)
        acked[key] = kv.Put(rpc.PutRequest(key=key, value=key), timeout=5).header.revision
    ch.close()


def test_torn_wal_tail_is_repaired(tmp_path):
    m = procs.member("pyetcd", str(tmp_path))
    acked: dict = {}
    try:
        m.start()
        _put_some(m, 50, acked)
        m.kill(signal.SIGKILL)
        last = _wal_files(m)[-1]
        used = _used_bytes(last)
        with open(last, "r+b") as f:  # half of a record that never finished being written
            f.seek(used)
            f.write(b"\x37\x00\x00\x00\x02" + os.urandom(9))
        m.start()
        _check(m.endpoint, acked)
        _put_some(m, 10, acked)
        m.kill(signal.SIGKILL)
        m.start()
        _check(m.endpoint, acked)
    finally:
        m.stop()


def test_corrupt_wal_middle_is_refused(tmp_path):
    m = procs.member("pyetcd", str(tmp_path))
    acked: dict = {}
    try:
        m.start()
        _put_some(m, 200, acked)
        m.kill(signal.SIGKILL)
        path = _wal_files(m)[-1]
        used = _used_bytes(path)
        with open(path, "r+b") as f:
            f.seek(used // 2)
            b = f.read(1)
            f.seek(used // 2)
            f.write(bytes([b[0] ^ 0x5A]))
        with pytest.raises(RuntimeError, match="exited with code 1"):
            m.start(timeout=15)
        log = m.log_tail(5)
        assert "corrupt" in log.lower() or "crc" in log.lower(), log
    finally:
        m.stop()
