"""LeaseService and run_expiry in-process, on a fake server whose propose() applies through the
LeaseApplier at once, and a fake clock (the loop is driven with tiny sleeps, nothing timed)."""
from __future__ import annotations

import asyncio

import pytest

from pyetcd import errors
from pyetcd.api.lease import IDGenerator, LeaseService, run_expiry
from pyetcd.lease import Lessor
from pyetcd.pb import raft_internal, rpc
from pyetcd.server.apply.kv import KVApplier
from pyetcd.server.apply.lease import LeaseApplier
from pyetcd.server.alarms import BackendQuota
from pyetcd.storage.backend import Backend
from pyetcd.storage.mvcc import KVStore

from .wiring import hook_kv_applier


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class Cfg:
    election_timeout = 1000
    heartbeat_interval = 100


class Log:
    def __init__(self):
        self.lines = []

    def __getattr__(self, level):
        return lambda msg, **kw: self.lines.append((level, msg, kw))


class FakeServer:
    member_id = 0x8E9E05C52164694D

    def __init__(self, tmp_path, checkpointing=False):
        self.be = Backend(str(tmp_path / "db"))
        self.kv = KVStore(self.be)
        self.clock = Clock()
        self.lessor = Lessor(self.be, min_ttl=2, now=self.clock, checkpointing=checkpointing,
                             checkpoint_interval=300, expired_retry_interval=7)
        self.lessor.promote(1.0)
        self.la = LeaseApplier(self.lessor, self.kv)
        self.applier = KVApplier(self.kv, lease_exists=self.lessor.exists)
        hook_kv_applier(self.applier, self.la)
        self.cfg = Cfg()
        self.lg = Log()
        self.quota = BackendQuota(None, lambda: 0)  # no quota (--quota-backend-bytes -1)
        self.proposed = []

    async def propose(self, r):
        which = r.WhichOneof("request")
        self.proposed.append((which, r))
        await asyncio.sleep(0)
        if which == "lease_grant":
            return self.la.grant(r.lease_grant)
        if which == "lease_revoke":
            return self.la.revoke(r.lease_revoke)[0]
        if which == "lease_checkpoint":
            return self.la.checkpoint(r.lease_checkpoint)
        if which == "put":
            return self.applier.put(r.put)[0]
        raise AssertionError(which)

    def fill_header(self, h):
        h.member_id = self.member_id
        h.raft_term = 2
        if h.revision == 0:
            h.revision = self.kv.rev


class Ctx:
    async def abort(self, code, details):
        raise RuntimeError((code, details))


@pytest.fixture
def srv(tmp_path):
    s = FakeServer(tmp_path)
    yield s
    s.be.close()


def run(coro):
    return asyncio.run(coro)


def test_id_generator_like_etcds():
    g = IDGenerator(0x8E9E05C52164694D, now_ms=0x12_3456_789A)
    a, b = g.next(), g.next()
    assert a >> 48 == 0x694D and b == a + 1
    assert a & 0xFFFF_FFFF_FFFF == (0x12_3456_789A << 8) + 1


def test_grant_picks_positive_unused_id(srv):
    svc = LeaseService(srv)

    async def go():
        r1 = await svc.LeaseGrant(rpc.LeaseGrantRequest(TTL=5), Ctx())
        r2 = await svc.LeaseGrant(rpc.LeaseGrantRequest(TTL=5, ID=77), Ctx())
        return r1, r2
    r1, r2 = run(go())
    assert r1.ID > 0 and r1.ID >> 48 == 0x694D & 0x7FFF and r1.TTL == 5
    assert r2.ID == 77
    assert [w for w, _ in srv.proposed] == ["lease_grant", "lease_grant"]


def test_time_to_live_and_leases(srv):
    svc = LeaseService(srv)
    srv.lessor.grant(1, 50)
    srv.lessor.grant(2, 10)
    srv.lessor.attach(1, b"k")

    async def go():
        a = await svc.LeaseTimeToLive(rpc.LeaseTimeToLiveRequest(ID=1, keys=True), Ctx())
        b = await svc.LeaseTimeToLive(rpc.LeaseTimeToLiveRequest(ID=3, keys=True), Ctx())
        c = await svc.LeaseLeases(rpc.LeaseLeasesRequest(), Ctx())
        return a, b, c
    a, b, c = run(go())
    assert (a.ID, a.TTL, a.grantedTTL, list(a.keys)) == (1, 50, 50, [b"k"])
    assert (b.ID, b.TTL, b.grantedTTL, list(b.keys)) == (3, -1, 0, [])
    assert [x.ID for x in c.leases] == [2, 1]           # soonest expiry first
    assert c.header.member_id == srv.member_id


def test_keepalive_stream(srv):
    svc = LeaseService(srv)
    srv.lessor.grant(1, 30)

    async def reqs():
        for lid in (1, 9, 1):
            yield rpc.LeaseKeepAliveRequest(ID=lid)

    async def go():
        return [r async for r in svc.LeaseKeepAlive(reqs(), Ctx())]
    out = run(go())
    assert [(r.ID, r.TTL, r.header.raft_term) for r in out] == [(1, 30, 2), (9, 0, 2), (1, 30, 2)]


def test_renew_of_expired_lease_waits_for_revoke(srv):
    svc = LeaseService(srv)
    srv.lessor.grant(1, 5)
    srv.clock.t += 6

    async def go():
        task = asyncio.create_task(svc.renew(1))
        await asyncio.sleep(0.12)
        assert not task.done()                        # expired, not revoked: waiting
        await srv.propose(raft_internal.InternalRaftRequest(lease_revoke=rpc.LeaseRevokeRequest(ID=1)))
        return await asyncio.wait_for(task, 5)
    assert run(go()) == 0


def test_renew_clears_checkpointed_ttl_first(tmp_path):
    srv = FakeServer(tmp_path, checkpointing=True)
    svc = LeaseService(srv)
    srv.lessor.grant(1, 1000)
    srv.lessor.checkpoint(1, 400)
    assert run(svc.renew(1)) == 1000
    assert [w for w, _ in srv.proposed] == ["lease_checkpoint"]
    cp = srv.proposed[0][1].lease_checkpoint.checkpoints[0]
    assert (cp.ID, cp.remaining_TTL) == (1, 0)
    assert srv.lessor.time_to_live(1)[0] == 1000
    assert run(svc.renew(1)) == 1000 and len(srv.proposed) == 1   # nothing left to clear
    srv.be.close()


def test_renew_not_primary_is_no_leader(srv):
    srv.lessor.grant(1, 10)
    srv.lessor.demote()
    with pytest.raises(errors.EtcdError) as ei:
        run(LeaseService(srv).renew(1))
    assert ei.value == errors.ErrNoLeader


async def _until(pred, loops=500):
    for _ in range(loops):
        if pred():
            return True
        await asyncio.sleep(0.005)
    return False


def test_run_expiry_revokes_expired_leases_with_their_keys(srv):
    for lid in (1, 2, 3):
        srv.lessor.grant(lid, 10)
    srv.lessor.grant(4, 100)
    srv.applier.put(rpc.PutRequest(key=b"a", value=b"v", lease=1))
    srv.applier.put(rpc.PutRequest(key=b"b", value=b"v", lease=4))

    async def go():
        task = asyncio.create_task(run_expiry(srv, srv.lessor, max_interval=0.01, min_interval=0.001))
        try:
            await asyncio.sleep(0.05)
            assert srv.proposed == []                   # nothing due yet
            srv.clock.t += 11
            assert await _until(lambda: len(srv.lessor) == 1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    run(go())
    revoked = sorted(r.lease_revoke.ID for w, r in srv.proposed if w == "lease_revoke")
    assert revoked == [1, 2, 3]                         # each proposed once
    assert [kv.key for kv in srv.kv.range(b"\x00", b"\x00").kvs] == [b"b"]


def test_run_expiry_proposes_checkpoint_batches(tmp_path):
    srv = FakeServer(tmp_path, checkpointing=True)
    for lid in range(1, 1201):
        srv.lessor.grant(lid, 1000)

    async def go():
        task = asyncio.create_task(run_expiry(srv, srv.lessor, max_interval=0.01, min_interval=0.001))
        try:
            srv.clock.t += 301
            assert await _until(lambda: sum(w == "lease_checkpoint" for w, _ in srv.proposed) >= 2)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    run(go())
    batches = [r.lease_checkpoint.checkpoints for w, r in srv.proposed if w == "lease_checkpoint"]
    assert [len(b) for b in batches] == [1000, 200]
    assert {c.remaining_TTL for b in batches for c in b} == {699}
    assert srv.lessor.lookup(5).remaining_ttl == 699
    srv.be.close()
