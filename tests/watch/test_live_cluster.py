"""Watch on a three-member pyetcd cluster: a watcher on a follower sees writes made through the
leader; when that follower falls so far behind that it is sent a snapshot, its watchable store
is restored over the new store and the watcher still gets every event, in order, no gap."""
import asyncio
import os

import grpc
import pytest

from pyetcd.pb import rpc, rpc_grpc

from conftest import needs_watch, shim_command

pytestmark = [needs_watch, pytest.mark.skipif(os.environ.get("PYETCD_SKIP_CLUSTER") == "1",
                                              reason="cluster tests disabled")]


def test_follower_watch_survives_snapshot_catch_up(tmp_path):
    from pyetcd.testing.cluster import Cluster

    n = 600  # as tests/cluster: past --snapshot-count 200 with 20 catch-up entries
    with shim_command():
        c = Cluster("pyetcd", str(tmp_path), size=3, proxy=False,
                    extra_args=["--snapshot-count", "200", "--experimental-snapshot-catchup-entries", "20"])
        with c:
            leader = c.leader()
            follower = next(x for x in c.running() if x != leader)

            async def main():
                lch = grpc.aio.insecure_channel(c.members[leader].endpoint)
                fch = grpc.aio.insecure_channel(c.members[follower].endpoint)
                kv = rpc_grpc.KVStub(lch)
                call = rpc_grpc.WatchStub(fch).Watch()
                try:
                    await call.write(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
                        key=b"w/", range_end=b"w0")))
                    assert (await call.read()).created
                    first = (await kv.Put(rpc.PutRequest(key=b"w/first", value=b"x"))).header.revision
                    r = await call.read()
                    assert [e.kv.mod_revision for e in r.events] == [first]
                    c.sigstop(follower)
                    try:
                        for i in range(n):
                            await kv.Put(rpc.PutRequest(key=b"w/%d" % i, value=b"v%d" % i), timeout=10)
                    finally:
                        c.sigcont(follower)
                    got = []
                    while len(got) < n:
                        r = await asyncio.wait_for(call.read(), 60)
                        assert not r.canceled, r
                        got.extend((e.kv.mod_revision, e.kv.key) for e in r.events)
                    assert got == [(first + 1 + i, b"w/%d" % i) for i in range(n)]
                finally:
                    call.cancel()
                    await lch.close()
                    await fch.close()
            asyncio.run(asyncio.wait_for(main(), 300))
            log = open(c.members[follower].log_path).read()
            assert "installed a snapshot from the leader" in log, "the follower never needed a snapshot"
