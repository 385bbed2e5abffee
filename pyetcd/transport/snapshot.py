"""Snapshot transfer: a MsgSnap followed by its backend database, on a stream of its own.

Like etcd's rafthttp snapshotSender/snapshotHandler: the message, then the db file in chunks,
here closed by an end marker carrying the size and CRC-32C of every data byte. The receiver
writes the bytes to a temp file in its snapshot directory, verifies size and checksum, fsyncs,
renames the file into place and only then hands it to the server; the sender learns the
outcome from the call's status and reports it with on_snapshot_status.

File reads and writes (and the CRC) run in the transport's I/O threads, overlapped with the
network: chunk k+1 is read while chunk k is written to the stream, and on the receiving side
chunk k is written to disk while chunk k+1 arrives.
"""
from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import TYPE_CHECKING

import crc32c
import grpc

from pyetcd._pb.peerpb import peer_pb2, peer_pb2_grpc

from ._common import id_hex, metadata, rpc_code, rpc_details

if TYPE_CHECKING:  # pragma: no cover
    from .peer import Peer
    from .transport import Transport


def _read_chunk(f, n: int, crc: int) -> tuple[bytes, int]:
    data = f.read(n)
    return data, crc32c.crc32c(data, crc)


def _write_chunk(f, data: bytes, crc: int) -> int:
    f.write(data)
    return crc32c.crc32c(data, crc)


def _finish_file(f) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()


async def send_snapshot(t: "Transport", peer: "Peer", msg, db_path: str) -> None:
    """Stream ``msg`` and the file at ``db_path`` to ``peer``; report the outcome. Never raises."""
    loop = asyncio.get_running_loop()
    to = peer.id
    failed = True
    start = time.monotonic()
    size = 0
    channel = None
    call = None
    f = None
    try:
        size = os.path.getsize(db_path)
        f = open(db_path, "rb")
        t.logger.info("sending database snapshot", remote_peer_id=id_hex(to),
                      snapshot_index=msg.snapshot.metadata.index, size=size)
        channel = peer.snapshot_channel()
        stub = peer_pb2_grpc.PeerStub(channel)
        call = stub.Snapshot(metadata=metadata(t.cluster_id, t.local_id, to), wait_for_ready=False)
        await call.write(peer_pb2.SnapshotChunk(message=msg, db_size=size))
        crc = 0
        sent = 0
        fut = loop.run_in_executor(t._io, _read_chunk, f, t.snapshot_chunk_size, 0)
        while True:
            data, new_crc = await fut
            if not data:
                break
            crc = new_crc
            fut = loop.run_in_executor(t._io, _read_chunk, f, t.snapshot_chunk_size, crc)
            await call.write(peer_pb2.SnapshotChunk(data=data))
            sent += len(data)
        await call.write(peer_pb2.SnapshotChunk(end=peer_pb2.SnapshotEnd(size=sent, crc32c=crc)))
        await call.done_writing()
        await call  # the ack: the receiver verified the file and its server installed it
        failed = False
        dt = time.monotonic() - start
        t.logger.info("sent database snapshot", remote_peer_id=id_hex(to), size=sent,
                      took=f"{dt:.3f}s")
    except asyncio.CancelledError:
        if call is not None:
            call.cancel()
        raise
    except Exception as exc:  # noqa: BLE001
        code = rpc_code(exc)
        t.logger.warn("failed to send database snapshot", remote_peer_id=id_hex(to),
                      size=size, code=code.name if code else None,
                      error=rpc_details(exc) if code else repr(exc))
        if code == grpc.StatusCode.PERMISSION_DENIED:
            t._call_removed()
        if call is not None:
            call.cancel()
    finally:
        if f is not None:
            f.close()
        if channel is not None:
            await channel.close()
        if failed:
            peer.report_unreachable(force=True)
        t._call_snapshot_status(to, failed)


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


async def receive_snapshot(t: "Transport", from_id: int, request_iterator, context):
    """Server side of the Snapshot RPC (identity already checked)."""
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    tmp = None
    f = None
    final = None
    handed_over = False
    pending = None  # the disk write of the previous chunk, overlapped with receiving the next
    try:
        it = request_iterator.__aiter__()
        try:
            first = await it.__anext__()
        except StopAsyncIteration:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "pyetcd: empty snapshot stream") from None
        if first.WhichOneof("part") != "message":
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                         "pyetcd: snapshot stream must start with the MsgSnap message")
        msg = first.message
        expect = first.db_size
        index = msg.snapshot.metadata.index
        t.logger.info("receiving database snapshot", remote_peer_id=id_hex(from_id),
                      snapshot_index=index, size=expect)
        os.makedirs(t.snapshot_dir, exist_ok=True)
        tmp = os.path.join(t.snapshot_dir, f"{index:016x}-{uuid.uuid4().hex[:8]}.snap.db.part")
        f = open(tmp, "wb")
        crc = 0
        got = 0
        end = None
        async for chunk in it:
            kind = chunk.WhichOneof("part")
            if kind == "data":
                if pending is not None:
                    crc = await pending
                    pending = None
                got += len(chunk.data)
                if got > expect:
                    raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                                 f"pyetcd: snapshot data exceeds the announced {expect} bytes")
                pending = loop.run_in_executor(t._io, _write_chunk, f, chunk.data, crc)
            elif kind == "end":
                end = chunk.end
                break
            else:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "pyetcd: unexpected snapshot chunk")
        if pending is not None:
            crc = await pending
            pending = None
        if end is None:
            raise _Abort(grpc.StatusCode.DATA_LOSS, "pyetcd: snapshot stream ended before its end marker")
        if not (got == expect == end.size):
            raise _Abort(grpc.StatusCode.DATA_LOSS,
                         f"pyetcd: snapshot size mismatch (announced {expect}, end marker "
                         f"{end.size}, received {got})")
        if crc != end.crc32c:
            raise _Abort(grpc.StatusCode.DATA_LOSS,
                         f"pyetcd: snapshot checksum mismatch (crc32c {crc:08x}, expected {end.crc32c:08x})")
        ff, f = f, None
        await loop.run_in_executor(t._io, _finish_file, ff)
        final = os.path.join(t.snapshot_dir, f"{index:016x}.snap.db")
        os.replace(tmp, final)
        tmp = None
        dt = time.monotonic() - start
        t.logger.info("received and saved database snapshot", remote_peer_id=id_hex(from_id),
                      snapshot_index=index, size=got, took=f"{dt:.3f}s")
        handed_over = True
        try:
            await t.on_snapshot(msg, final)
        except Exception as exc:  # noqa: BLE001
            handed_over = False
            t.logger.error("failed to install received snapshot", remote_peer_id=id_hex(from_id),
                           snapshot_index=index, error=repr(exc))
            raise _Abort(grpc.StatusCode.INTERNAL, f"pyetcd: failed to install snapshot: {exc}") from None
        return peer_pb2.SnapshotAck()
    except _Abort as a:
        t.logger.warn("refused database snapshot", remote_peer_id=id_hex(from_id), error=a.message)
        await context.abort(a.code, a.message)
    finally:
        if pending is not None:  # never close the file under a write still running in a thread
            try:
                await asyncio.shield(pending)
            except BaseException:  # noqa: BLE001
                pass
        if f is not None:
            f.close()
        if tmp is not None:
            _unlink(tmp)
        if final is not None and not handed_over:
            _unlink(final)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
