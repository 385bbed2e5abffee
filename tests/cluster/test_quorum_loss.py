"""Reads on a member that has lost its quorum, against real etcd 3.5.1 and pyetcd alike.

etcd's linearizable read waits out a lost leader: Raft drops the ReadIndex request while there is
no leader, the server asks again every 500 ms, and the caller gets "request timed out" at the end
of the request timeout (5 s + 2 × election timeout), not an immediate "no leader". Writes wait
likewise for a leader to take them. Serializable reads are still served from the member's own
store."""
import os

import grpc
import pytest

from pyetcd.pb import rpc, rpc_grpc
from pyetcd.testing import procs
from pyetcd.testing.cluster import Cluster

pytestmark = pytest.mark.skipif(
    os.environ.get("PYETCD_SKIP_CLUSTER") == "1", reason="cluster tests disabled")

KINDS = ["pyetcd"] + (["etcd"] if procs.have_etcd() else [])


def _put(c, name, key, value):
    rpc_grpc.KVStub(c.channel(name)).Put(rpc.PutRequest(key=key, value=value), timeout=10)


@pytest.mark.parametrize("kind", KINDS)
def test_reads_after_quorum_loss(tmp_path, kind):
    with Cluster(kind, str(tmp_path), size=3, proxy=False) as c:
        c.wait_ready()
        survivor = c.running()[0]
        _put(c, survivor, b"q", b"before")
        for name in c.running()[1:]:
            c.stop_member(name)
        kv = rpc_grpc.KVStub(c.channel(survivor))
        r = kv.Range(rpc.RangeRequest(key=b"q", serializable=True), timeout=10)
        assert [(x.key, x.value) for x in r.kvs] == [(b"q", b"before")]
        with pytest.raises(grpc.RpcError) as ei:
            kv.Range(rpc.RangeRequest(key=b"q"), timeout=30)  # longer than etcd's request timeout
        assert (ei.value.code(), ei.value.details()) == (
            grpc.StatusCode.UNAVAILABLE, "etcdserver: request timed out")
        # Raft takes no proposal without a leader: it waits, and ends with the raw context error
        # that etcd 3.5 does not map to a gRPC code.
        lease = rpc_grpc.LeaseStub(c.channel(survivor))
        for call in (lambda: kv.Put(rpc.PutRequest(key=b"q", value=b"after"), timeout=30),
                     lambda: lease.LeaseGrant(rpc.LeaseGrantRequest(TTL=60), timeout=30)):
            with pytest.raises(grpc.RpcError) as ei:
                call()
            assert (ei.value.code(), ei.value.details()) == (
                grpc.StatusCode.UNKNOWN, "context deadline exceeded")
        r = kv.Range(rpc.RangeRequest(key=b"q", serializable=True), timeout=10)
        assert [(x.key, x.value) for x in r.kvs] == [(b"q", b"before")]
