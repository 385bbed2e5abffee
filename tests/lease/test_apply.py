"""LeaseApplier on a real MVCC store: grant/revoke/checkpoint responses, revoke in one revision,
and key<->lease attachment following puts, ignore_lease puts, deletes and txns."""
from __future__ import annotations

import pytest

from pyetcd import errors
from pyetcd.lease import Lessor
from pyetcd.pb import kv as mvccpb
from pyetcd.pb import rpc
from pyetcd.server.apply.kv import KVApplier
from pyetcd.server.apply.lease import LeaseApplier
from pyetcd.storage.backend import Backend
from pyetcd.storage.mvcc import KVStore

from .wiring import hook_kv_applier


class Clock:
    t = 50.0

    def __call__(self):
        return self.t


@pytest.fixture
def env(tmp_path):
    be = Backend(str(tmp_path / "db"))
    kv = KVStore(be)
    clock = Clock()
    le = Lessor(be, min_ttl=2, now=clock)
    le.promote(1.0)
    sunk = []
    la = LeaseApplier(le, kv, event_sink=sunk.append)
    ka = KVApplier(kv, lease_exists=le.exists)
    hook_kv_applier(ka, la)
    yield le, la, ka, kv, sunk
    be.close()


def grant(la, lid, ttl=10):
    return la.grant(rpc.LeaseGrantRequest(ID=lid, TTL=ttl))


def put(ka, key, lease=0, **kw):
    return ka.put(rpc.PutRequest(key=key, value=b"v", lease=lease, **kw))[0]


def test_grant_response_and_errors(env):
    le, la, ka, kv, _ = env
    resp = grant(la, 7, 1)
    assert (resp.ID, resp.TTL, resp.header.revision) == (7, 2, 1)
    with pytest.raises(errors.EtcdError) as ei:
        grant(la, 7)
    assert ei.value == errors.ErrLeaseExist
    with pytest.raises(errors.EtcdError) as ei:
        grant(la, 8, 9_000_000_001)
    assert ei.value == errors.ErrLeaseTTLTooLarge


def test_revoke_deletes_all_keys_in_one_revision(env):
    le, la, ka, kv, sunk = env
    grant(la, 1)
    grant(la, 2)
    for k in (b"c", b"a", b"b"):
        put(ka, k, 1)
    put(ka, b"other", 2)
    put(ka, b"free")
    assert kv.rev == 6
    resp, events = la.revoke(rpc.LeaseRevokeRequest(ID=1))
    assert resp.header.revision == 7 and kv.rev == 7
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in events] == [
        (mvccpb.Event.DELETE, b"a", 7), (mvccpb.Event.DELETE, b"b", 7), (mvccpb.Event.DELETE, b"c", 7)]
    assert sunk == [events]
    assert [x.key for x in kv.range(b"\x00", b"\x00").kvs] == [b"free", b"other"]
    assert not le.exists(1) and kv.be.get("lease", (1).to_bytes(8, "big")) is None
    with pytest.raises(errors.EtcdError) as ei:
        la.revoke(rpc.LeaseRevokeRequest(ID=1))
    assert ei.value == errors.ErrLeaseNotFound


def test_revoke_without_keys_keeps_revision(env):
    le, la, ka, kv, sunk = env
    grant(la, 1)
    resp, events = la.revoke(rpc.LeaseRevokeRequest(ID=1))
    assert events == [] and sunk == [] and resp.header.revision == kv.rev == 1


def test_attachment_follows_puts_and_deletes(env):
    le, la, ka, kv, _ = env
    grant(la, 1)
    grant(la, 2)
    put(ka, b"k", 1)
    assert le.get_lease(b"k") == 1
    put(ka, b"k", 2)                       # moves to lease 2
    assert le.time_to_live(1)[2] == [] and le.time_to_live(2)[2] == [b"k"]
    put(ka, b"k", ignore_value=True, ignore_lease=True)   # keeps lease 2
    assert le.get_lease(b"k") == 2
    put(ka, b"k")                          # no lease: detached
    assert le.get_lease(b"k") == 0 and le.time_to_live(2)[2] == []
    put(ka, b"k", 2)
    ka.delete_range(rpc.DeleteRangeRequest(key=b"k"))
    assert le.get_lease(b"k") == 0 and le.time_to_live(2)[2] == []
    with pytest.raises(errors.EtcdError) as ei:
        put(ka, b"x", 99)
    assert ei.value == errors.ErrLeaseNotFound


def test_attachment_follows_txn_ops(env):
    le, la, ka, kv, _ = env
    grant(la, 1)
    put(ka, b"gone", 1)
    t = rpc.TxnRequest(success=[
        rpc.RequestOp(request_put=rpc.PutRequest(key=b"t1", value=b"v", lease=1)),
        rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=b"gone")),
        rpc.RequestOp(request_txn=rpc.TxnRequest(success=[
            rpc.RequestOp(request_put=rpc.PutRequest(key=b"t2", value=b"v", lease=1))]))])
    ka.txn(t, is_write=True)
    assert le.time_to_live(1)[2] == [b"t1", b"t2"]
    _, events = la.revoke(rpc.LeaseRevokeRequest(ID=1))
    assert {e.kv.key for e in events} == {b"t1", b"t2"}
    assert len({e.kv.mod_revision for e in events}) == 1


def test_checkpoint_apply(env):
    le, la, ka, kv, _ = env
    grant(la, 1, 1000)
    req = rpc.LeaseCheckpointRequest()
    req.checkpoints.add(ID=1, remaining_TTL=300)
    req.checkpoints.add(ID=42, remaining_TTL=5)   # unknown: ignored
    resp = la.checkpoint(req)
    assert resp.header.revision == kv.rev
    assert le.lookup(1).remaining_ttl == 300
