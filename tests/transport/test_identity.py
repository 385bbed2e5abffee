"""Identity checks on every call: cluster id, addressee, known sender, removed member."""
import grpc

from pyetcd._pb.peerpb import peer_pb2, peer_pb2_grpc
from pyetcd.transport._common import metadata

from .helpers import CLUSTER, Node, cluster, msg, run, stop_all, wait_until


async def _raw_stream(url, md):
    async with grpc.aio.insecure_channel(url[len("http://"):]) as ch:
        call = peer_pb2_grpc.PeerStub(ch).Stream(metadata=md)
        try:
            await call.write(peer_pb2.MessageBatch(msgs=[msg(1, 2, 0)]))
            await call.done_writing()
        except grpc.aio.AioRpcError:
            pass
        try:
            await call
        except grpc.aio.AioRpcError as e:
            return e.code(), e.details()
        return grpc.StatusCode.OK, ""


def test_wrong_cluster_id_is_refused_and_logged():
    async def body():
        a, b = await cluster(2)
        other = await Node(1, cluster_id=0xBAD).start()
        try:
            code, details = await _raw_stream(b.url, metadata(0xBAD, 1, 2))
            assert code == grpc.StatusCode.FAILED_PRECONDITION
            assert "cluster ID mismatch" in details
            assert b.logger.has("warn", "cluster ID mismatch")
            # A whole Transport from another cluster never becomes active nor delivers.
            other.t.add_peer(2, [b.url])
            await wait_until(lambda: 2 in other.unreachable, what="refusal seen")
            other.t.send([msg(1, 2, 99)])
            assert other.t.active_since(2) is None
            assert other.logger.has("error", "cluster ID mismatch")
            assert all(m.index != 99 for m in b.msgs)
        finally:
            await stop_all([a, b, other])
    run(body())


def test_wrong_addressee_and_unknown_sender_are_refused():
    async def body():
        a, b = await cluster(2)
        try:
            code, details = await _raw_stream(b.url, metadata(CLUSTER, 1, 3))
            assert code == grpc.StatusCode.FAILED_PRECONDITION
            assert "to field mismatch" in details
            code, details = await _raw_stream(b.url, metadata(CLUSTER, 7, 2))
            assert code == grpc.StatusCode.NOT_FOUND
            assert "not a known peer" in details
            code, details = await _raw_stream(b.url, ())
            assert code == grpc.StatusCode.INVALID_ARGUMENT
            # The real sender is accepted.
            code, _ = await _raw_stream(b.url, metadata(CLUSTER, 1, 2))
            assert code == grpc.StatusCode.OK
            assert [m.index for m in b.msgs] == [0]
        finally:
            await stop_all([a, b])
    run(body())


def test_removed_member_is_told_so():
    async def body():
        removed = []
        a = await Node(1).start()
        b = await Node(2, is_removed=lambda mid: mid == 1).start()
        a.t.on_removed = lambda: removed.append(True)
        try:
            b.t.add_peer(1, [a.url])
            a.t.add_peer(2, [b.url])
            await wait_until(lambda: removed, what="on_removed")
            assert a.t.active_since(2) is None
            code, details = await _raw_stream(b.url, metadata(CLUSTER, 1, 2))
            assert code == grpc.StatusCode.PERMISSION_DENIED
            assert "removed" in details
        finally:
            await stop_all([a, b])
    run(body())


def test_cluster_id_learned_later():
    async def body():
        a = await Node(1).start()
        b = await Node(2, cluster_id=None).start()  # joining: does not know the id yet
        try:
            a.t.add_peer(2, [b.url])
            b.t.add_peer(1, [a.url])
            # b's stream to a carries no cluster id and is refused ...
            await wait_until(lambda: 1 in b.unreachable, what="refusal")
            assert b.t.active_since(1) is None
            # ... until b learns it.
            b.t.cluster_id = CLUSTER
            await wait_until(lambda: b.t.active_since(1) is not None, what="accepted")
            b.t.send([msg(2, 1, 3)])
            await wait_until(lambda: [m.index for m in a.msgs] == [3], what="delivery")
        finally:
            await stop_all([a, b])
    run(body())

