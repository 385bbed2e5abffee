"""etcdserverpb.Maintenance: Status, Hash, HashKV, Alarm, Defragment, MoveLeader, Snapshot."""
from __future__ import annotations

import asyncio
import time

import grpc

from pyetcd import ETCD_VERSION, errors
from pyetcd.pb import raft_internal, rpc, rpc_grpc
from pyetcd.server.alarms import ACTIVATE, DEACTIVATE, GET
from pyetcd.storage.backend import CONSISTENT_INDEX_KEY, META

from .base import Service, unary, unimplemented_methods

# etcd 3.5.1's DefaultIgnores for Maintenance.Hash: only meta/consistent_index (not meta/term).
HASH_IGNORES = frozenset({(META, CONSISTENT_INDEX_KEY)})

ErrTimeoutLeaderTransfer = errors.EtcdError(errors.ErrTimeout.code,
                                            "etcdserver: request timed out, leader transfer took too long")


class MaintenanceService(Service, rpc_grpc.MaintenanceServicer):
    @unary
    async def Status(self, request, context):
        s = self.server
        resp = rpc.StatusResponse(
            version=ETCD_VERSION, dbSize=s.backend.size(), dbSizeInUse=s.backend.size_in_use(),
            leader=s.leader_id, raftIndex=s.last_index, raftTerm=s.term,
            raftAppliedIndex=s.applied_index, isLearner=s.is_learner)
        if s.leader_id == 0:
            resp.errors.append(errors.ErrNoLeader.message)  # "etcdserver: no leader", as etcd 3.5.1
        resp.errors.extend(s.alarms.status_errors())  # "memberID:<decimal> alarm:NOSPACE "
        return resp

    @unary
    async def Hash(self, request, context):
        """etcd's backend hash: crc32c over every bucket's name, keys and values. pyetcd's
        members, members_removed and lease buckets hold other bytes than etcd's, so the value
        differs from etcd's for the same data; members of one pyetcd cluster agree."""
        return rpc.HashResponse(hash=self.server.backend.hash(ignores=HASH_IGNORES))

    @unary
    async def HashKV(self, request, context):
        h, rev, compact_rev = self.server.kv.hash_kv(request.revision)
        resp = rpc.HashKVResponse(hash=h, compact_revision=compact_rev)
        resp.header.revision = rev
        return resp

    @unary
    async def Alarm(self, request, context):
        # etcd 3.5.1 sends every action through the log, GET included.
        if request.action not in (GET, ACTIVATE, DEACTIVATE):
            # etcd 3.5.1 applies it as nothing and then dereferences a nil response (a panic).
            raise errors.EtcdError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"pyetcd: unknown alarm action {request.action}")
        return await self.server.propose(raft_internal.InternalRaftRequest(alarm=request))

    @unary
    async def Defragment(self, request, context):
        self.server.backend.defrag()
        return rpc.DefragmentResponse()

    @unary
    async def MoveLeader(self, request, context):
        s = self.server
        if not s.is_leader:
            raise errors.ErrNotLeader
        target = s.membership.members.get(request.targetID)
        if target is None or target.is_learner:
            raise errors.ErrBadLeaderTransferee
        if request.targetID != s.member_id:
            s.raft.transfer_leadership(request.targetID)
            deadline = time.monotonic() + s.request_timeout
            while s.leader_id != request.targetID:
                if time.monotonic() > deadline:
                    raise ErrTimeoutLeaderTransfer
                await asyncio.sleep(s.cfg.heartbeat_interval / 1000)
        return rpc.MoveLeaderResponse()


    async def Snapshot(self, request, context):
        """The backend as one consistent bbolt file in etcd 3.5's format, streamed as etcd streams
        it: 32 KiB chunks with the bytes still to come, then the SHA-256 of everything sent. So
        etcdutl (and pyetcdctl) can check, inspect and restore it, for etcd or for pyetcd."""
        import hashlib
        import os
        import tempfile

        s = self.server
        snap_dir = os.path.join(s.cfg.member_dir, "snap")
        fd, copy = tempfile.mkstemp(prefix="snapshot-", suffix=".sqlite", dir=snap_dir)
        os.close(fd)
        bolt = copy[:-len(".sqlite")] + ".bolt"
        loop = asyncio.get_running_loop()
        try:
            s.backend.snapshot(copy)  # a consistent copy, taken on the loop between applies
            total = await loop.run_in_executor(None, _sqlite_to_bolt, copy, bolt)
            h = hashlib.sha256()
            sent = 0
            first = True
            with open(bolt, "rb") as f:
                while True:
                    chunk = await loop.run_in_executor(None, f.read, SNAPSHOT_CHUNK)
                    if not chunk:
                        break
                    h.update(chunk)
                    sent += len(chunk)
                    resp = rpc.SnapshotResponse(remaining_bytes=total - sent, blob=chunk)
                    if first:
                        s.fill_header(resp.header)
                        first = False
                    yield resp
            yield rpc.SnapshotResponse(remaining_bytes=0, blob=h.digest())
        except errors.EtcdError as e:
            await context.abort(e.code, e.message)
        finally:
            for p in (copy, copy + "-wal", copy + "-shm", bolt):
                try:
                    os.remove(p)
                except OSError:
                    pass


def _sqlite_to_bolt(sqlite_path: str, bolt_path: str) -> int:
    from pyetcd.storage.backend import Backend
    from pyetcd.storage.etcd_buckets import backend_to_bolt

    be = Backend(sqlite_path)
    try:
        return backend_to_bolt(be, bolt_path)
    finally:
        be.close()


SNAPSHOT_CHUNK = 32 * 1024  # etcd's snapshotSendBufferSize

unimplemented_methods(MaintenanceService, ["Downgrade"], "Maintenance")
