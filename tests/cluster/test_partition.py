"""A real minority partition of a pyetcd cluster through the peer proxies: the proxy reads the
sender's identity from the gRPC metadata of pyetcd's peer streams, so only the named links are cut."""
import time

import grpc

from pyetcd.pb import rpc, rpc_grpc
from pyetcd.testing.cluster import Cluster


def test_isolated_leader_loses_leadership_majority_goes_on(tmp_path):
    with Cluster("pyetcd", str(tmp_path), size=3, proxy=True) as c:
        old = c.leader()
        rest = [n for n in c.running() if n != old]
        c.net.partition([{old}, set(rest)])
        deadline = time.monotonic() + 20
        while True:  # the majority elects one of its own and keeps serving writes
            try:
                new = c.leader(timeout=2)
                if new in rest:
                    rpc_grpc.KVStub(c.channel(new)).Put(rpc.PutRequest(key=b"p", value=b"1"), timeout=5)
                    break
            except (TimeoutError, grpc.RpcError, RuntimeError):
                pass
            assert time.monotonic() < deadline, "majority side did not elect a leader"
            time.sleep(0.3)
        # The majority members still reach each other: both answer a linearizable read.
        for n in rest:
            r = rpc_grpc.KVStub(c.channel(n)).Range(rpc.RangeRequest(key=b"p"), timeout=5)
            assert r.kvs and r.kvs[0].value == b"1"
        # The isolated old leader cannot serve a linearizable read (check-quorum stepped it down).
        try:
            rpc_grpc.KVStub(c.channel(old)).Range(rpc.RangeRequest(key=b"p"), timeout=3)
            cut_off = False
        except grpc.RpcError:
            cut_off = True
        assert cut_off
        c.net.heal()
        deadline = time.monotonic() + 20
        while True:
            try:
                r = rpc_grpc.KVStub(c.channel(old)).Range(rpc.RangeRequest(key=b"p"), timeout=3)
                if r.kvs and r.kvs[0].value == b"1":
                    break
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline, "old leader did not rejoin"
            time.sleep(0.3)
