"""Snapshot transfer: MsgSnap + a multi-MB db file, checksum, status reports, failures."""
import asyncio
import os

import grpc

from pyetcd._pb.peerpb import peer_pb2, peer_pb2_grpc
from pyetcd.pb import raftpb
from pyetcd.transport._common import metadata

from .helpers import CLUSTER, cluster, msg, run, stop_all, wait_until


def snap_msg(frm, to, index=1234, term=5):
    m = msg(frm, to, 0, mtype=raftpb.MsgSnap)
    m.term = term
    m.snapshot.metadata.index = index
    m.snapshot.metadata.term = term
    m.snapshot.metadata.conf_state.voters.extend([1, 2])
    m.snapshot.data = b"membership"
    return m


def make_db(path, size):
    data = os.urandom(size)
    with open(path, "wb") as f:
        f.write(data)
    return data


def test_multi_mb_snapshot_is_transferred_verified_and_reported(tmp_path):
    async def body():
        a, b = await cluster(2, tmp_path=tmp_path)
        try:
            db = str(tmp_path / "db")
            data = make_db(db, 5 * (1 << 20) + 12345)  # not a multiple of the chunk size
            m = snap_msg(1, 2)
            a.t.send_snapshot(m, db)
            await wait_until(lambda: a.snap_status, what="snapshot status")
            assert a.snap_status == [(2, False)]
            assert len(b.snapshots) == 1
            got_msg, path, content = b.snapshots[0]
            assert got_msg == m
            assert content == data
            assert path == os.path.join(str(tmp_path / "snap2"), f"{1234:016x}.snap.db")
            # No partial files left behind.
            assert os.listdir(tmp_path / "snap2") == [f"{1234:016x}.snap.db"]
            # Raft messages kept flowing on their own stream.
            a.t.send([msg(1, 2, 9)])
            await wait_until(lambda: len(b.msgs) == 1, what="raft msg after snapshot")
        finally:
            await stop_all([a, b])
    run(body())


def test_empty_db_file(tmp_path):
    async def body():
        a, b = await cluster(2, tmp_path=tmp_path)
        try:
            db = str(tmp_path / "db")
            make_db(db, 0)
            a.t.send_snapshot(snap_msg(1, 2, index=1), db)
            await wait_until(lambda: a.snap_status, what="snapshot status")
            assert a.snap_status == [(2, False)]
            assert b.snapshots[0][2] == b""
        finally:
            await stop_all([a, b])
    run(body())


def test_install_failure_reports_failed_and_removes_file(tmp_path):
    async def refuse(msg, path):
        raise RuntimeError("disk on fire")

    async def body():
        a, b = await cluster(2, tmp_path=tmp_path, install=refuse)
        try:
            db = str(tmp_path / "db")
            make_db(db, 3 << 20)
            a.t.send_snapshot(snap_msg(1, 2), db)
            await wait_until(lambda: a.snap_status, what="snapshot status")
            assert a.snap_status == [(2, True)]
            assert 2 in a.unreachable
            assert os.listdir(tmp_path / "snap2") == []
            assert b.logger.has("error", "disk on fire")
        finally:
            await stop_all([a, b])
    run(body())


def test_unreachable_peer_reports_failed(tmp_path):
    async def body():
        a, b = await cluster(2, tmp_path=tmp_path)
        try:
            db = str(tmp_path / "db")
            make_db(db, 1 << 20)
            await b.t.stop()
            a.t.send_snapshot(snap_msg(1, 2), db)
            await wait_until(lambda: a.snap_status, what="snapshot status")
            assert a.snap_status == [(2, True)]
            # A missing db file fails the same way, without raising in send_snapshot.
            a.t.send_snapshot(snap_msg(1, 2), str(tmp_path / "missing"))
            await wait_until(lambda: len(a.snap_status) == 2, what="second status")
            assert a.snap_status[1] == (2, True)
        finally:
            await stop_all([a, b])
    run(body())


async def _raw_snapshot(url, chunks, cluster_id=CLUSTER, frm=1, to=2):
    async with grpc.aio.insecure_channel(url[len("http://"):]) as ch:
        stub = peer_pb2_grpc.PeerStub(ch)
        call = stub.Snapshot(metadata=metadata(cluster_id, frm, to))
        for c in chunks:
            await call.write(c)
        await call.done_writing()
        return await call


def _expect_rpc_error(coro, code):
    async def check():
        try:
            await coro
        except grpc.aio.AioRpcError as e:
            assert e.code() == code, (e.code(), e.details())
            return e.details()
        raise AssertionError("call succeeded")
    return check()


def test_checksum_mismatch_is_refused(tmp_path):
    async def body():
        a, b = await cluster(2, tmp_path=tmp_path)
        try:
            m = snap_msg(1, 2)
            data = b"z" * 1000
            chunks = [peer_pb2.SnapshotChunk(message=m, db_size=1000),
                      peer_pb2.SnapshotChunk(data=data),
                      peer_pb2.SnapshotChunk(end=peer_pb2.SnapshotEnd(size=1000, crc32c=12345))]
            details = await _expect_rpc_error(_raw_snapshot(b.url, chunks), grpc.StatusCode.DATA_LOSS)
            assert "checksum mismatch" in details
            # Truncated: fewer bytes than announced.
            chunks[0] = peer_pb2.SnapshotChunk(message=m, db_size=2000)
            details = await _expect_rpc_error(_raw_snapshot(b.url, chunks), grpc.StatusCode.DATA_LOSS)
            assert "size mismatch" in details
            # No end marker at all.
            details = await _expect_rpc_error(_raw_snapshot(b.url, chunks[:2]), grpc.StatusCode.DATA_LOSS)
            assert "end marker" in details
            assert b.snapshots == []
            await asyncio.sleep(0)  # let the handlers' cleanup run
            await wait_until(lambda: os.listdir(tmp_path / "snap2") == [], what="temp files removed")
        finally:
            await stop_all([a, b])
    run(body())


def test_sender_stopping_mid_transfer_leaves_no_partial_file(tmp_path, monkeypatch):
    import threading

    from pyetcd.transport import snapshot as snapmod
    gate = threading.Event()
    reads = [0]
    real_read = snapmod._read_chunk

    def gated_read(f, n, crc):  # runs in the I/O thread: hold the transfer after two chunks
        reads[0] += 1
        if reads[0] > 2:
            gate.wait(10)
        return real_read(f, n, crc)
    monkeypatch.setattr(snapmod, "_read_chunk", gated_read)

    async def body():
        a, b = await cluster(2, tmp_path=tmp_path, snapshot_chunk_size=64 << 10)
        try:
            db = str(tmp_path / "db")
            make_db(db, 1 << 20)
            a.t.send_snapshot(snap_msg(1, 2), db)
            snapdir = tmp_path / "snap2"
            await wait_until(lambda: snapdir.exists() and any(p.endswith(".part") for p in os.listdir(snapdir)),
                             what="transfer under way")
            stopping = asyncio.ensure_future(a.t.stop())
            await asyncio.sleep(0)
            gate.set()
            await stopping
            # The sender reports the transfer failed; the receiver drops its partial file.
            assert a.snap_status == [(2, True)]
            await wait_until(lambda: os.listdir(snapdir) == [], what="partial file removed")
            assert b.snapshots == []
        finally:
            gate.set()
            await stop_all([a, b])
    run(body())
