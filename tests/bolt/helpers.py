"""Shared by the bolt and defrag tests: fill a real server with history, and observe it."""
from __future__ import annotations

import json
import random
import subprocess

from pyetcd.testing import procs


def _rpc():
    from pyetcd._pb.etcdserverpb import rpc_pb2
    return rpc_pb2


def populate(endpoint: str, seed: int = 1) -> None:
    """A few hundred puts and deletes, leases with keys, a txn, a big value, a compaction."""
    from pyetcd.cli.client import Client
    rpc = _rpc()
    rng = random.Random(seed)
    c = Client([endpoint])
    try:
        leases = [c.call("LeaseGrant", rpc.LeaseGrantRequest(TTL=600 + i)).ID for i in range(4)]
        keys = [b"k/%03d" % i for i in range(120)] + [bytes([0, 255, i]) for i in range(10)]
        for i in range(300):
            k = rng.choice(keys)
            lease = rng.choice(leases) if i % 7 == 0 else 0
            c.call("Put", rpc.PutRequest(key=k, value=rng.randbytes(rng.randint(0, 300)), lease=lease))
            if i % 5 == 0:
                c.call("DeleteRange", rpc.DeleteRangeRequest(key=rng.choice(keys)))
        c.call("Put", rpc.PutRequest(key=b"big", value=rng.randbytes(100_000)))
        c.call("DeleteRange", rpc.DeleteRangeRequest(key=b"k/01", range_end=b"k/02"))
        c.call("Txn", rpc.TxnRequest(success=[
            rpc.RequestOp(request_put=rpc.PutRequest(key=b"t1", value=b"a")),
            rpc.RequestOp(request_put=rpc.PutRequest(key=b"t2", value=b"b"))]))
        c.call("LeaseRevoke", rpc.LeaseRevokeRequest(ID=leases[0]))
        rev = c.call("Range", rpc.RangeRequest(key=b"t1")).header.revision
        c.call("Compact", rpc.CompactionRequest(revision=rev - 100, physical=True))
        for i in range(20):
            c.call("Put", rpc.PutRequest(key=b"after/%d" % i, value=b"v%d" % i))
    finally:
        c.close()


def ctl(endpoint: str, *args: str):
    r = procs.etcdctl(endpoint, *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def observe(endpoint: str) -> dict:
    """What a client sees: every key with its revisions, a read at an old revision, leases with
    their keys, the current revision and the KV hash. Terms and member headers are left out."""
    got = json.loads(ctl(endpoint, "get", "", "--from-key", "-w", "json"))
    rev = got["header"]["revision"]
    old = json.loads(ctl(endpoint, "get", "k/", "--prefix", "--rev", str(rev - 30), "-w", "json"))
    leases = sorted(int(x["id"]) for x in
                    json.loads(ctl(endpoint, "lease", "list", "-w", "json")).get("leases", []))
    lease_keys = {}
    for lid in leases:
        ttl = json.loads(ctl(endpoint, "lease", "timetolive", f"{lid:x}", "--keys", "-w", "json"))
        lease_keys[lid] = (ttl["granted-ttl"], sorted(ttl.get("keys") or []))
    hkv = json.loads(ctl(endpoint, "endpoint", "hashkv", "-w", "json"))[0]["HashKV"]
    return {"kvs": got["kvs"], "revision": rev, "old": old["kvs"], "leases": lease_keys,
            "hash": hkv["hash"], "compact_revision": hkv["compact_revision"]}


def etcdutl_status(path: str) -> dict:
    r = subprocess.run([procs.etcd_bin("etcdutl"), "snapshot", "status", path, "-w", "json"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)
