"""One pyetcd member: its data dir, identity, and the write path a single member runs today.

The write path is the one Raft will replicate (DESIGN.md, "The path of a write"):

    propose(request) -> entry appended to the WAL (fsync, off the event loop) -> applied to MVCC
                     -> consistent index stored with the data -> the waiting client is answered.

Proposals that arrive while one batch is being fsynced are gathered into the next batch, so
one fsync covers many writes (group commit). Until the clustering issue puts RawNode in the
middle, the member is its own leader: every start is a new term (as a single-node election
is), and the first entry of a term is an empty one, as a new Raft leader appends.

Data dir layout, as etcd's: <data-dir>/member/wal/ (the log) and <data-dir>/member/snap/db
(the SQLite backend, a materialised view of the log up to its consistent index).
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pyetcd import errors
from pyetcd.pb import raft_internal, raftpb

from . import ids
from .apply.kv import KVApplier


@dataclass
class MemberInfo:
    id: int
    name: str
    peer_urls: list[str]
    client_urls: list[str] = field(default_factory=list)
    is_learner: bool = False

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "peerURLs": self.peer_urls,
                "clientURLs": self.client_urls, "isLearner": self.is_learner}

    @classmethod
    def from_json(cls, d: dict) -> "MemberInfo":
        return cls(d["id"], d["name"], d["peerURLs"], d.get("clientURLs", []), d.get("isLearner", False))


class DataDirError(Exception):
    """The data dir cannot be used (corrupt WAL, mismatched flags...): the server exits 1."""


class EtcdServer:
    def __init__(self, cfg, logger):
        self.cfg = cfg
        self.lg = logger
        self.member_id = 0
        self.cluster_id = 0
        self.term = 0
        self.members: list[MemberInfo] = []
        self.last_index = 0       # last entry in the log
        self.applied_index = 0    # last entry applied to the backend (the consistent index)
        self.wal = None
        self.backend = None
        self.kv = None
        self.applier: KVApplier | None = None
        self._queue: list = []
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self._wal_pool = ThreadPoolExecutor(1, thread_name_prefix="wal")
        self._req_seq = 0
        self._stopping = False
        self.event_listeners: list = []   # callables(events) run after each applied write txn
        self.sync = not cfg.unsafe_no_fsync

    # ---- startup -------------------------------------------------------------------------
    def open(self) -> None:
        """Open or bootstrap the data dir, replay the log past the consistent index."""
        from pyetcd.storage.backend import Backend
        from pyetcd.storage.mvcc import KVStore
        from pyetcd.wal import WAL, WALError

        member_dir = self.cfg.member_dir
        wal_dir = self.cfg.wal_dir or os.path.join(member_dir, "wal")
        snap_dir = os.path.join(member_dir, "snap")
        os.makedirs(snap_dir, exist_ok=True)
        self.backend = Backend(os.path.join(snap_dir, "db"))
        self.kv = KVStore(self.backend)
        self._open_lessor()
        try:
            if WAL.exists(wal_dir):
                self.wal, rs = WAL.open(wal_dir)
                self._restart(rs)
            else:
                self._bootstrap(wal_dir)
        except WALError as e:
            raise DataDirError(f"failed to open WAL in {wal_dir}: {e}") from e
        self._campaign()

    def _open_lessor(self) -> None:
        """Leases and their key attachments come back from the backend before the WAL replay."""
        from pyetcd.lease import Lessor, min_lease_ttl, request_timeout

        from .apply.lease import LeaseApplier

        cfg = self.cfg
        self.lessor = Lessor(self.backend, min_ttl=min_lease_ttl(cfg.heartbeat_interval, cfg.election_timeout),
                             now=time.monotonic, checkpointing=cfg.experimental_enable_lease_checkpoint,
                             expired_retry_interval=request_timeout(cfg.election_timeout), logger=self.lg)
        self.lessor.recover(self.kv)
        self.lease_applier = LeaseApplier(self.lessor, self.kv)
        self.applier = KVApplier(self.kv, lease_exists=self.lessor.exists,
                                 on_put=self.lease_applier.attach_put,
                                 on_delete=self.lease_applier.detach_delete)

    def _bootstrap(self, wal_dir: str) -> None:
        from pyetcd.wal import WAL

        cfg = self.cfg
        if cfg.initial_cluster_state != "new":
            raise DataDirError("--initial-cluster-state=existing needs a running cluster to join; "
                               "clustering is not implemented yet")
        cluster = cfg.initial_cluster_map()
        if cfg.name not in cluster:
            raise DataDirError(f"couldn't find local name {cfg.name!r} in the initial cluster configuration")
        if sorted(cluster[cfg.name]) != sorted(cfg.initial_advertise_peer_urls):
            raise DataDirError(
                f"--initial-cluster has {cfg.name}={','.join(cluster[cfg.name])} but missing from "
                f"--initial-advertise-peer-urls={','.join(cfg.initial_advertise_peer_urls)}")
        if len(cluster) > 1:
            raise DataDirError("multi-member clusters are not implemented yet (clustering issue)")
        token = cfg.initial_cluster_token
        self.members = [MemberInfo(ids.member_id(urls, token), name, urls) for name, urls in cluster.items()]
        me = next(m for m in self.members if m.name == cfg.name)
        self.member_id = me.id
        self.cluster_id = ids.cluster_id([m.id for m in self.members])
        me.client_urls = list(cfg.advertise_client_urls)
        meta = json.dumps({"member_id": self.member_id, "cluster_id": self.cluster_id}).encode()
        self.wal = WAL.create(wal_dir, meta)
        # Term 1 holds the bootstrap configuration, one ConfChange per member (as etcd).
        entries = []
        for m in self.members:
            cc = raftpb.ConfChange(type=raftpb.ConfChangeAddNode, node_id=m.id,
                                   context=json.dumps(m.to_json()).encode())
            self.last_index += 1
            entries.append(raftpb.Entry(Term=1, Index=self.last_index, Type=raftpb.EntryConfChange,
                                        Data=cc.SerializeToString()))
        self.term = 1
        self.wal.save(raftpb.HardState(term=1, commit=self.last_index), entries, sync=self.sync)
        for e in entries:
            self._apply_entry(e)
        self.lg.info("bootstrapped a new single-member cluster", **{
            "local-member-id": f"{self.member_id:x}", "cluster-id": f"{self.cluster_id:x}"})

    def _restart(self, rs) -> None:
        meta = json.loads(rs.metadata.decode())
        self.member_id, self.cluster_id = meta["member_id"], meta["cluster_id"]
        self.term = rs.hard_state.term
        ci = self.backend.consistent_index
        self.members = self._load_members()
        replayed = 0
        for e in rs.entries:
            self.last_index = e.Index
            self.term = max(self.term, e.Term)
            if e.Index <= ci:
                continue
            self._apply_entry(e)
            replayed += 1
        self.last_index = max(self.last_index, ci)
        self.applied_index = max(self.applied_index, ci)
        for m in self.members:
            if m.id == self.member_id:
                m.client_urls = list(self.cfg.advertise_client_urls)
        self.lg.info("restarted member from its data dir", **{
            "local-member-id": f"{self.member_id:x}", "cluster-id": f"{self.cluster_id:x}",
            "consistent-index": ci, "replayed-entries": replayed, "last-index": self.last_index,
            "wal-repaired": bool(getattr(rs, "repaired", False))})

    def _campaign(self) -> None:
        """Become leader of a new term; its first entry is empty, as a new Raft leader's is."""
        self.term += 1
        self.last_index += 1
        e = raftpb.Entry(Term=self.term, Index=self.last_index, Type=raftpb.EntryNormal)
        hs = raftpb.HardState(term=self.term, vote=self.member_id, commit=self.last_index)
        self.wal.save(hs, [e], sync=self.sync)
        self._apply_entry(e)
        self.backend.force_commit()
        # etcd promotes the lessor once the new leader has applied its first entry.
        self.lessor.promote(self.cfg.election_timeout / 1000)
        self.lg.info("elected leader of a single-member cluster", term=self.term)

    def _load_members(self) -> list[MemberInfo]:
        out = []
        for _, v in self.backend.range("members", b"", b"\xff" * 9):
            out.append(MemberInfo.from_json(json.loads(v.decode())))
        return out

    # ---- running -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background tasks (call inside the running event loop)."""
        self._wake = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._run_flusher(), name="wal-flusher"))
        self._tasks.append(asyncio.create_task(self._run_backend_commits(), name="backend-commit"))
        from pyetcd.api.lease import run_expiry

        self._tasks.append(asyncio.create_task(run_expiry(self, self.lessor), name="lease-expiry"))

    async def stop(self) -> None:
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        for _, fut in self._queue:
            if not fut.done():
                fut.set_exception(errors.ErrStopped)
        self._queue.clear()
        self.close()

    def close(self) -> None:
        if self.backend is not None:
            self.backend.force_commit()
            self.backend.close()
            self.backend = None
        if self.wal is not None:
            self.wal.close()
            self.wal = None
        self._wal_pool.shutdown(wait=True)

    async def propose(self, req):
        """Log and apply one InternalRaftRequest; return its response (or raise its EtcdError)."""
        if self._stopping:
            raise errors.ErrStopped
        self._req_seq += 1
        req.header.ID = (self.member_id & 0xFFFF) << 48 | (self._req_seq & ((1 << 48) - 1))
        data = req.SerializeToString()
        if len(data) > self.cfg.max_request_bytes:
            raise errors.ErrRequestTooLarge
        fut = asyncio.get_running_loop().create_future()
        self._queue.append((data, fut))
        self._wake.set()
        return await fut

    async def _run_flusher(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            while self._queue and not self._stopping:
                batch, self._queue = self._queue, []
                entries = []
                for data, _ in batch:
                    self.last_index += 1
                    entries.append(raftpb.Entry(Term=self.term, Index=self.last_index,
                                                Type=raftpb.EntryNormal, Data=data))
                hs = raftpb.HardState(term=self.term, vote=self.member_id, commit=self.last_index)
                try:
                    await loop.run_in_executor(self._wal_pool, self._save, hs, entries)
                except Exception as e:  # a WAL that cannot be written: nothing is acknowledged
                    self.lg.fatal("failed to write the WAL; stopping", error=repr(e))
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(errors.ErrStopped)
                    os._exit(1)
                for e, (_, fut) in zip(entries, batch):
                    try:
                        result = self._apply_entry(e)
                    except errors.EtcdError as err:
                        if not fut.done():
                            fut.set_exception(err)
                        continue
                    if not fut.done():
                        fut.set_result(result)
                self.backend.commit_if_due()

    def _save(self, hs, entries) -> None:
        self.wal.save(hs, entries, sync=self.sync)

    async def _run_backend_commits(self) -> None:
        interval = self.cfg.backend_batch_interval or 0.1
        while not self._stopping:
            await asyncio.sleep(interval)
            self.backend.commit_if_due()

    # ---- apply ---------------------------------------------------------------------------
    def _apply_entry(self, e):
        """Apply one committed entry; the consistent index moves with it, error or not."""
        try:
            if e.Type == raftpb.EntryConfChange:
                return self._apply_conf_change(e)
            if not e.Data:
                return None
            return self._apply_request(raft_internal.InternalRaftRequest.FromString(e.Data))
        finally:
            self.applied_index = e.Index
            self.backend.set_consistent_index(e.Index, e.Term)

    def _apply_conf_change(self, e):
        cc = raftpb.ConfChange.FromString(e.Data)
        if cc.type == raftpb.ConfChangeAddNode and cc.context:
            m = MemberInfo.from_json(json.loads(cc.context.decode()))
            self.backend.put("members", m.id.to_bytes(8, "big"), json.dumps(m.to_json()).encode())
            if all(x.id != m.id for x in self.members):
                self.members.append(m)
        return None

    def _apply_request(self, r):
        which = r.WhichOneof("request")
        a = self.applier
        if which == "put":
            resp, events = a.put(r.put)
        elif which == "delete_range":
            resp, events = a.delete_range(r.delete_range)
        elif which == "txn":
            resp, events = a.txn(r.txn, is_write=True)
        elif which == "compaction":
            return a.compaction(r.compaction)
        elif which == "lease_grant":
            return self.lease_applier.grant(r.lease_grant)
        elif which == "lease_revoke":
            resp, events = self.lease_applier.revoke(r.lease_revoke)
        elif which == "lease_checkpoint":
            return self.lease_applier.checkpoint(r.lease_checkpoint)
        else:
            raise errors.unimplemented(f"request {which}")
        if events:
            for listener in self.event_listeners:
                listener(events)
        return resp

    # ---- reads and status ----------------------------------------------------------------
    def read_txn(self, t):
        resp, _ = self.applier.txn(t, is_write=False)
        return resp

    def fill_header(self, h) -> None:
        h.cluster_id = self.cluster_id
        h.member_id = self.member_id
        h.raft_term = self.term
        if h.revision == 0:
            h.revision = self.kv.rev

    def now(self) -> float:
        return time.time()
