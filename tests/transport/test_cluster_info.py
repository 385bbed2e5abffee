"""fetch_cluster_info for a joining member, and lease keepalives forwarded to the leader."""
import pytest

from pyetcd import errors
from pyetcd.testing.procs import free_port
from pyetcd.transport import ClusterInfoError, fetch_cluster_info

from .helpers import CLUSTER, Node, cluster, run, stop_all

MEMBERS = [
    (1, "infra1", ["http://127.0.0.1:2380"], ["http://127.0.0.1:2379"], False),
    (2, "infra2", ["http://127.0.0.1:12380", "http://10.0.0.2:2380"], [], True),
]


def test_fetch_cluster_info_skips_dead_peers():
    async def body():
        n = await Node(1, members_provider=lambda: (CLUSTER, MEMBERS), cluster_token="tok").start()
        try:
            dead = f"http://127.0.0.1:{free_port()}"
            cid, members = await fetch_cluster_info([dead, n.url], "tok")
            assert cid == CLUSTER
            assert members == MEMBERS
            # Without a token the answer is the same.
            assert await fetch_cluster_info([n.url]) == (CLUSTER, MEMBERS)
        finally:
            await n.t.stop()
    run(body())


def test_fetch_cluster_info_errors():
    async def body():
        n = await Node(1, members_provider=lambda: (CLUSTER, MEMBERS), cluster_token="tok").start()
        bare = await Node(2).start()  # no members_provider
        try:
            with pytest.raises(ClusterInfoError) as ei:
                await fetch_cluster_info([n.url], "other-token")
            assert "cluster token mismatch" in str(ei.value)
            with pytest.raises(ClusterInfoError) as ei:
                await fetch_cluster_info([bare.url, "https://127.0.0.1:1", "ftp://127.0.0.1:1"])
            assert "member list is not available" in ei.value.errors[bare.url]
            # https is dialled with TLS now; nothing listens there.
            assert ei.value.errors["https://127.0.0.1:1"].startswith("UNAVAILABLE")
            assert "unsupported peer URL scheme 'ftp'" in ei.value.errors["ftp://127.0.0.1:1"]
        finally:
            await stop_all([n, bare])
    run(body())


def test_lease_renew_is_forwarded_to_the_leader():
    renewed = []

    async def renew(lease_id):
        if lease_id == 404:
            raise errors.ErrLeaseNotFound
        renewed.append(lease_id)
        return 60

    async def body():
        a, b = await cluster(2, lease_renew=renew)
        try:
            assert await b.t.forward_lease_renew(1, 77) == 60
            assert renewed == [77]
            with pytest.raises(errors.EtcdError) as ei:
                await b.t.forward_lease_renew(1, 404)
            assert ei.value == errors.ErrLeaseNotFound
            with pytest.raises(errors.EtcdError) as ei:
                await b.t.forward_lease_renew(9, 1)  # not a peer
            assert ei.value == errors.ErrNoLeader
            await a.t.stop()
            with pytest.raises(errors.EtcdError) as ei:
                await b.t.forward_lease_renew(1, 77, timeout=2.0)
            assert ei.value in (errors.ErrNoLeader, errors.ErrTimeout)
        finally:
            await stop_all([a, b])
    run(body())
