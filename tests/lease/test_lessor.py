"""The lessor driven directly, on a fake clock (no sleeping): grant limits, renew, expiry offers,
retry interval, checkpoints, promote/demote, persistence and recovery."""
from __future__ import annotations

import pytest

from pyetcd import errors
from pyetcd.lease import MAX_LEASE_TTL, LeaseExpiredError, Lessor, NotPrimaryError, min_lease_ttl, request_timeout
from pyetcd.lease.lessor import FOREVER, REVOKE_RATE, decode_lease, encode_lease
from pyetcd.storage.backend import Backend
from pyetcd.storage.mvcc import KVStore


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


@pytest.fixture
def clock():
    return Clock()


def primary(clock, **kw) -> Lessor:
    le = Lessor(None, min_ttl=kw.pop("min_ttl", 2), now=clock, **kw)
    le.promote(0.0)
    return le


# ---- limits -------------------------------------------------------------------------------

def test_min_ttl_is_etcds_for_default_and_other_timings():
    assert min_lease_ttl(100, 1000) == 2      # etcd default: 15 heartbeats = 1.5 s -> 2 s
    assert min_lease_ttl(100, 500) == 1       # 7 ticks -> 0.7 s -> 1 s
    assert min_lease_ttl(50, 2000) == 3       # 60 ticks -> 3.0 s
    assert min_lease_ttl(100, 1050) == 2      # ticks = 10 (integer), as etcd's ElectionTicks
    assert request_timeout(1000) == 7.0


def test_grant_raises_ttl_to_minimum(clock):
    le = primary(clock)
    assert le.grant(1, 1).ttl == 2
    assert le.grant(2, 0).ttl == 2
    assert le.grant(3, -5).ttl == 2
    assert le.grant(4, 10).ttl == 10


def test_grant_limits_and_duplicates(clock):
    le = primary(clock)
    assert le.grant(5, MAX_LEASE_TTL).ttl == MAX_LEASE_TTL
    with pytest.raises(errors.EtcdError) as ei:
        le.grant(6, MAX_LEASE_TTL + 1)
    assert ei.value == errors.ErrLeaseTTLTooLarge
    with pytest.raises(errors.EtcdError) as ei:
        le.grant(5, 10)
    assert ei.value == errors.ErrLeaseExist
    with pytest.raises(errors.EtcdError) as ei:
        le.grant(0, 10)
    assert ei.value == errors.ErrLeaseNotFound
    assert not le.exists(6)
    assert le.grant(-7, 10).id == -7  # etcd accepts any non-zero int64


# ---- renew, time to live ------------------------------------------------------------------

def test_renew_restarts_ttl(clock):
    le = primary(clock)
    le.grant(1, 10)
    clock.advance(6)
    assert le.time_to_live(1)[0] == 4
    assert le.renew(1) == 10
    assert le.time_to_live(1)[0] == 10
    clock.advance(9.5)
    assert le.expired() == []
    clock.advance(0.5)
    assert [x.id for x in le.expired()] == [1]


def test_renew_errors(clock):
    le = Lessor(None, min_ttl=2, now=clock)
    le.grant(1, 10)
    with pytest.raises(NotPrimaryError):
        le.renew(1)
    le.promote(0)
    with pytest.raises(errors.EtcdError) as ei:
        le.renew(99)
    assert ei.value == errors.ErrLeaseNotFound
    clock.advance(10)
    with pytest.raises(LeaseExpiredError):
        le.renew(1)  # expired, waiting for its revoke: not renewable


def test_time_to_live_truncates_like_etcd(clock):
    le = primary(clock)
    le.grant(1, 10)
    assert le.time_to_live(1) == (10, 10, [])
    clock.advance(0.2)
    assert le.time_to_live(1)[0] == 9     # int64(9.8 s) = 9
    clock.advance(9.5)
    assert le.time_to_live(1)[0] == 0     # 0.3 s left
    clock.advance(1.0)
    assert le.time_to_live(1)[0] == 0     # -0.7 s truncates to 0
    clock.advance(1.0)
    assert le.time_to_live(1)[0] == -1
    with pytest.raises(errors.EtcdError):
        le.time_to_live(2)


# ---- attach / detach / revoke -------------------------------------------------------------

def test_attach_detach_and_revoke_returns_sorted_keys(clock):
    le = primary(clock)
    le.grant(1, 10)
    le.grant(2, 10)
    for k in (b"c", b"a", b"b"):
        le.attach(1, k)
    le.attach(2, b"z")
    assert le.get_lease(b"a") == 1 and le.get_lease(b"z") == 2 and le.get_lease(b"q") == 0
    le.detach(1, b"c")
    assert le.get_lease(b"c") == 0
    assert le.time_to_live(1)[2] == [b"a", b"b"]
    assert le.revoke(1) == [b"a", b"b"]
    assert le.get_lease(b"a") == 0 and le.lookup(1) is None
    assert le.get_lease(b"z") == 2
    with pytest.raises(errors.EtcdError) as ei:
        le.revoke(1)
    assert ei.value == errors.ErrLeaseNotFound
    with pytest.raises(errors.EtcdError):
        le.attach(1, b"x")


# ---- expiry -------------------------------------------------------------------------------

def test_expired_in_expiry_order_and_only_when_primary(clock):
    le = Lessor(None, min_ttl=2, now=clock, expired_retry_interval=60)
    le.grant(1, 30)
    le.grant(2, 10)
    le.grant(3, 20)
    clock.advance(100)
    assert le.expired() == []            # not primary: forever
    assert le.time_to_live(1)[0] > 10**9
    le.promote(0)
    clock.advance(20)
    assert [x.id for x in le.expired()] == [2, 3]
    clock.advance(10)
    assert [x.id for x in le.expired()] == [1]


def test_expired_lease_reoffered_after_retry_interval(clock):
    le = primary(clock, expired_retry_interval=7.0)
    le.grant(1, 5)
    clock.advance(5)
    assert [x.id for x in le.expired()] == [1]
    assert le.expired() == []
    clock.advance(6.9)
    assert le.expired() == []
    clock.advance(0.1)
    assert [x.id for x in le.expired()] == [1]
    le.revoke(1)
    clock.advance(100)
    assert le.expired() == []


def test_expired_respects_limit(clock):
    le = primary(clock)
    for i in range(1, 11):
        le.grant(i, 5)
    clock.advance(5)
    first = le.expired(limit=4)
    rest = le.expired()
    assert len(first) == 4 and len(rest) == 6
    assert {x.id for x in first + rest} == set(range(1, 11))


def test_renewed_lease_is_not_offered_and_heap_stays_bounded(clock):
    le = primary(clock)
    le.grant(1, 100)
    for _ in range(10_000):
        clock.advance(0.01)
        le.renew(1)
    assert len(le._exp_heap) <= 2 * len(le._exp_reg) + 64 + 1
    clock.advance(99.9)
    assert le.expired() == []
    clock.advance(0.1)
    assert [x.id for x in le.expired()] == [1]


def test_next_deadline(clock):
    le = primary(clock)
    assert le.next_deadline() is None
    le.grant(1, 10)
    assert le.next_deadline() == clock.t + 10


# ---- promote / demote ---------------------------------------------------------------------

def test_promote_extends_and_demote_freezes(clock):
    le = Lessor(None, min_ttl=2, now=clock)
    le.grant(1, 10)
    assert le.lookup(1).expiry == FOREVER
    le.promote(1.0)
    assert le.time_to_live(1)[0] == 11
    clock.advance(5)
    le.demote()
    assert not le.primary and le.expired(now=clock.t + 10**6) == []
    assert le.lookup(1).expiry == FOREVER
    le.promote(1.0)                       # new term: full TTL again (no checkpoint)
    assert le.time_to_live(1)[0] == 11


def test_promote_spreads_pile_up_of_many_leases(clock):
    le = Lessor(None, min_ttl=2, now=clock)
    n = 2 * REVOKE_RATE
    for i in range(1, n + 1):
        le.grant(i, 10)
    le.promote(1.0)
    target = (3 * REVOKE_RATE) // 4
    by_second: dict[int, int] = {}
    for lease in le.leases():
        by_second[int(lease.remaining(clock.t))] = by_second.get(int(lease.remaining(clock.t)), 0) + 1
    assert min(x.remaining(clock.t) for x in le.leases()) == pytest.approx(11.0)
    assert max(by_second.values()) <= target + 1   # at most ~3/4 of the revoke rate per second
    assert le.leases()[0].expiry <= le.leases()[-1].expiry


# ---- checkpoints --------------------------------------------------------------------------

def test_checkpoints_due_after_interval_with_remaining_ttl(clock):
    le = primary(clock, checkpointing=True, checkpoint_interval=300)
    le.grant(1, 1000)
    le.grant(2, 100)                 # TTL under the interval: never checkpointed
    assert le.due_checkpoints() == []
    clock.advance(299)
    assert le.due_checkpoints() == []
    clock.advance(1.5)
    assert le.due_checkpoints() == [(1, 700)]    # ceil(699.5)
    assert le.due_checkpoints() == []            # the next one is scheduled when applied
    le.checkpoint(1, 700)
    clock.advance(300)
    assert le.due_checkpoints() == [(1, 400)]


def test_checkpoint_is_used_by_next_promotion(clock):
    le = primary(clock, checkpointing=True, checkpoint_interval=300)
    le.grant(1, 1000)
    clock.advance(400)
    le.checkpoint(1, 600)
    le.demote()
    clock.advance(50)
    le.promote(1.0)
    assert le.time_to_live(1)[0] == 601
    assert le.renew_needs_checkpoint_clear(1)
    le.checkpoint(1, 0)                           # what a keepalive proposes first
    assert not le.renew_needs_checkpoint_clear(1)
    assert le.renew(1) == 1000
    assert le.time_to_live(1)[0] == 1000


def test_no_checkpoints_when_disabled(clock):
    le = primary(clock)
    le.grant(1, 1000)
    clock.advance(1000 - 1)
    assert le.due_checkpoints() == []
    le.checkpoint(1, 5)
    assert not le.renew_needs_checkpoint_clear(1)
    le.checkpoint(99, 5)                          # unknown lease: ignored, as etcd


# ---- persistence --------------------------------------------------------------------------

def test_encoding_roundtrip():
    k, v = encode_lease(-2, 9_000_000_000, 17)
    assert k == (2**64 - 2).to_bytes(8, "big") and len(v) == 24
    assert decode_lease(v) == (-2, 9_000_000_000, 17)


@pytest.mark.parametrize("use_restored", [True, False], ids=["restored_leases", "scan"])
def test_recover_from_backend_and_kv(tmp_path, clock, use_restored):
    be = Backend(str(tmp_path / "db"))
    kv = KVStore(be)
    le = Lessor(be, min_ttl=2, now=clock)
    le.promote(1.0)
    le.grant(1, 10)
    le.grant(2, 20)
    le.grant(3, 30)
    kv.put(b"a", b"1", 1)
    kv.put(b"b", b"1", 2)
    kv.put(b"c", b"1", 0)
    kv.put(b"d", b"1", 2)
    kv.put(b"d", b"2", 0)          # re-put without a lease: not attached any more
    kv.put(b"e", b"1", 77)         # unknown lease: ignored with a warning
    le.revoke(3)
    be.force_commit()
    be.close()

    be = Backend(str(tmp_path / "db"))
    le2 = Lessor(be, min_ttl=5, now=clock)
    le2.recover()
    assert le2.attach_from_kv(KVStore(be), chunk=2, use_restored=use_restored) == 2
    assert sorted(le2.ids()) == [1, 2]
    assert le2.lookup(1).ttl == 10 and le2.lookup(2).ttl == 20
    assert le2.time_to_live(1)[2] == [b"a"] and le2.time_to_live(2)[2] == [b"b"]
    assert le2.get_lease(b"d") == 0 and le2.get_lease(b"c") == 0
    assert not le2.primary and le2.lookup(1).expiry == FOREVER
    clock.advance(3)
    le2.promote(1.0)               # restart: full TTL + election timeout
    assert le2.time_to_live(1)[0] == 11
    be.close()


def test_recover_raises_ttl_to_new_minimum(tmp_path, clock):
    be = Backend(str(tmp_path / "db"))
    Lessor(be, min_ttl=2, now=clock).grant(1, 3)
    le = Lessor(be, min_ttl=5, now=clock)
    le.recover()
    assert le.lookup(1).ttl == 5
    be.close()


def test_checkpoint_persistence_follows_option(tmp_path, clock):
    be = Backend(str(tmp_path / "db"))
    le = Lessor(be, min_ttl=2, now=clock, checkpointing=True)
    le.grant(1, 1000)
    le.checkpoint(1, 400)
    assert decode_lease(be.get("lease", (1).to_bytes(8, "big")))[2] == 0   # etcd 3.5.1: memory only
    le = Lessor(be, min_ttl=2, now=clock, checkpointing=True, checkpoint_persist=True)
    le.recover()
    le.checkpoint(1, 400)
    assert decode_lease(be.get("lease", (1).to_bytes(8, "big")))[2] == 400
    le = Lessor(be, min_ttl=2, now=clock)
    le.recover()
    le.promote(1.0)
    assert le.time_to_live(1)[0] == 401
    be.close()
