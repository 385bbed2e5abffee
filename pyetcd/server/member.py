"""One pyetcd member: data dir, identity, and the write path through Raft.

    propose(request) -> Raft (RawNode, driven by raft_node.RaftNode) -> WAL fsync -> committed
    -> applied to MVCC, consistent index stored with the data -> the waiting client is answered.

Data dir layout, as etcd's: <data-dir>/member/wal/ (the log), <data-dir>/member/snap/ (raft
snapshot files and the SQLite backend `db`, a materialised view of the log up to its consistent
index). On restart the data dir wins over the --initial-* flags, as in etcd.
"""
from __future__ import annotations

import asyncio
import json
import os
import time

from pyetcd import errors
from pyetcd.pb import raft_internal, raftpb, rpc

from pyetcd.auth.context import stamp_header

from . import ids
from .alarms import AlarmState, new_backend_quota, raise_nospace_then
from .apply.kv import KVApplier
from .membership import MemberInfo, Membership
from .raft_node import RaftNode, restore_storage

__all__ = ["EtcdServer", "DataDirError", "MemberInfo"]


class DataDirError(Exception):
    """The data dir or the flags cannot be used (corrupt WAL, mismatched flags...): exit 1."""


class EtcdServer:
    def __init__(self, cfg, logger):
        self.cfg = cfg
        self.lg = logger
        self.member_id = 0
        self.cluster_id = 0
        self.wal = None
        self.backend = None
        self.kv = None
        self.raft: RaftNode | None = None
        self.membership: Membership | None = None
        self.transport = None
        self.applied_index = 0
        self.event_listeners: list = []   # callables(events) run after each applied write txn
        self.restore_hooks: list = []     # callables(kvstore) run after a snapshot replaced the store
        self.stop_event: asyncio.Event | None = None
        self._waiters: dict[int, asyncio.Future] = {}
        self.proposals_timed_out = 0  # proposals given up on (in etcd_server_proposals_failed_total)
        self._req_seq = int(time.time() * 1000) << 8
        self._tasks: list = []
        self._stopping = False
        self._was_leader = False
        self.request_timeout = 5.0 + 2 * cfg.election_timeout / 1000.0

    # ---- identity and status -------------------------------------------------------------
    @property
    def members(self) -> list[MemberInfo]:
        return self.membership.sorted()

    @property
    def term(self) -> int:
        return self.raft.term

    @property
    def last_index(self) -> int:
        return self.raft.commit

    @property
    def leader_id(self) -> int:
        return self.raft.lead

    @property
    def is_leader(self) -> bool:
        return self.raft.is_leader

    @property
    def is_learner(self) -> bool:
        m = self.membership.members.get(self.member_id)
        return bool(m and m.is_learner)

    def fill_header(self, h) -> None:
        h.cluster_id = self.cluster_id
        h.member_id = self.member_id
        h.raft_term = self.raft.term
        if h.revision == 0:
            h.revision = self.kv.rev

    # ---- startup -------------------------------------------------------------------------
    def _open_store(self) -> None:
        from pyetcd.lease import Lessor, min_lease_ttl, request_timeout
        from pyetcd.storage.backend import Backend
        from pyetcd.storage.mvcc import KVStore

        from .apply.lease import LeaseApplier

        cfg = self.cfg
        self.backend = Backend(self._db_path())
        self.kv = KVStore(self.backend)
        self.lessor = Lessor(self.backend, min_ttl=min_lease_ttl(cfg.heartbeat_interval, cfg.election_timeout),
                             now=time.monotonic, checkpointing=cfg.experimental_enable_lease_checkpoint,
                             checkpoint_interval=cfg.experimental_lease_checkpoint_interval,
                             expired_retry_interval=request_timeout(cfg.election_timeout), logger=self.lg)
        self.lessor.recover(self.kv)
        self.lease_applier = LeaseApplier(self.lessor, self.kv)
        self.applier = KVApplier(self.kv, lease_exists=self.lessor.exists,
                                 on_put=self.lease_applier.attach_put,
                                 on_delete=self.lease_applier.detach_delete)
        self.membership = Membership(self.backend)
        self.alarms = AlarmState(self.backend, self.lg)
        self.quota = new_backend_quota(cfg.quota_backend_bytes, self.backend.committed_size, self.lg)
        self._open_auth()
        self.applied_index = self.backend.consistent_index

    def _open_auth(self) -> None:
        from pyetcd.auth.apply import AuthApplier
        from pyetcd.auth.store import AuthStore
        cfg = self.cfg
        old = getattr(self, "auth", None)  # tokens survive a snapshot install, as etcd's Recover
        self.auth = AuthStore(self.backend, bcrypt_cost=cfg.bcrypt_cost, token_ttl=cfg.auth_token_ttl,
                              token_type=cfg.auth_token, logger=self.lg, tokens=old.tokens if old else None)
        self.auth_applier = AuthApplier(self.auth, self.lessor)

    def _db_path(self) -> str:
        return os.path.join(self.cfg.member_dir, "snap", "db")

    async def open(self) -> None:
        """Open or create the data dir and the Raft node (call inside the event loop)."""
        from pyetcd.wal import WAL, WALError
        from pyetcd.wal.snap import Snapshotter

        wal_dir = self.cfg.wal_dir or os.path.join(self.cfg.member_dir, "wal")
        self._import_etcd_data_dir()
        os.makedirs(os.path.join(self.cfg.member_dir, "snap"), exist_ok=True)
        self._open_store()
        self.snapshotter = Snapshotter(os.path.join(self.cfg.member_dir, "snap"))
        try:
            if WAL.exists(wal_dir):
                self._restart(wal_dir)
            elif self.cfg.initial_cluster_state == "existing":
                await self._join(wal_dir)
            else:
                self._bootstrap(wal_dir)
        except WALError as e:
            raise DataDirError(f"failed to open WAL in {wal_dir}: {e}") from e

    def _import_etcd_data_dir(self) -> None:
        """A data dir etcd 3.5 wrote (e.g. by `etcdutl snapshot restore`) becomes pyetcd's."""
        from .etcd_import import ImportError_, finish_interrupted_import, import_etcd_member_dir, is_etcd_member_dir

        member_dir = self.cfg.member_dir
        finish_interrupted_import(member_dir)
        if not is_etcd_member_dir(member_dir):
            return
        if self.cfg.wal_dir:
            raise DataDirError("importing an etcd data dir is not supported with --wal-dir")
        try:
            import_etcd_member_dir(member_dir, self.lg)
        except (ImportError_, OSError) as e:
            raise DataDirError(f"cannot import the etcd data dir {self.cfg.data_dir}: {e}") from e

    def _local_urls_check(self, cluster: dict) -> None:
        cfg = self.cfg
        if cfg.name not in cluster:
            raise DataDirError(f"couldn't find local name {cfg.name!r} in the initial cluster configuration")
        if sorted(cluster[cfg.name]) != sorted(cfg.initial_advertise_peer_urls):
            raise DataDirError(
                f"--initial-cluster has {cfg.name}={','.join(cluster[cfg.name])} but missing from "
                f"--initial-advertise-peer-urls={','.join(cfg.initial_advertise_peer_urls)}")

    def _new_raft(self, storage, applied: int) -> RaftNode:
        node = RaftNode(member_id=self.member_id, cfg=self.cfg, lg=self.lg, wal=self.wal,
                        snapshotter=self.snapshotter, storage=storage, applied=applied,
                        apply_entry=self._apply_entry, install_snapshot=self._install_snapshot,
                        make_snapshot_data=lambda: self.membership.snapshot_data(),
                        on_leader_change=self._on_leader_change,
                        snapshot_db=lambda path: self.backend.snapshot(path),
                        before_snapshot=lambda: self.backend.force_commit())
        return node

    def _bootstrap(self, wal_dir: str) -> None:
        from pyetcd.raft import MemoryStorage, Peer
        from pyetcd.wal import WAL

        cfg = self.cfg
        cluster = cfg.initial_cluster_map()
        self._local_urls_check(cluster)
        token = cfg.initial_cluster_token
        members = [MemberInfo(ids.member_id(urls, token), name, urls) for name, urls in cluster.items()]
        self.member_id = next(m.id for m in members if m.name == cfg.name)
        self.cluster_id = ids.cluster_id([m.id for m in members])
        self.wal = WAL.create(wal_dir, self._wal_meta())
        self.raft = self._new_raft(MemoryStorage(), 0)
        self.raft.bootstrap([Peer(m.id, m.encode()) for m in sorted(members, key=lambda m: m.id)])
        self.lg.info("starting a new cluster member", **{
            "local-member-id": f"{self.member_id:x}", "cluster-id": f"{self.cluster_id:x}",
            "members": [f"{m.id:x}" for m in members]})

    async def _join(self, wal_dir: str) -> None:
        from pyetcd.raft import MemoryStorage
        from pyetcd.transport import fetch_cluster_info
        from pyetcd.wal import WAL

        cfg = self.cfg
        cluster = cfg.initial_cluster_map()
        self._local_urls_check(cluster)
        others = [u for name, urls in cluster.items() if name != cfg.name for u in urls]
        if not others:
            raise DataDirError("--initial-cluster-state=existing needs the other members in --initial-cluster")
        try:
            cluster_id, infos = await fetch_cluster_info(others, tls=getattr(self, "peer_tls", None))
        except Exception as e:
            raise DataDirError(f"cannot fetch cluster info from peer urls {others}: {e}") from e
        mine = set(cfg.initial_advertise_peer_urls)
        me = None
        # As etcd: the fetched members only tell us who we are and whom to talk to. The member
        # store fills from the log (or a snapshot) like any other state, so replayed conf changes
        # validate against the history they were made in.
        self._join_peers = [(mid, list(purls)) for (mid, _, purls, _, _) in infos]
        for (mid, name, purls, curls, learner) in infos:
            if set(purls) & mine:
                me = MemberInfo(mid, name, list(purls), list(curls), learner)
        if me is None:
            raise DataDirError("member not found in the cluster (was it added with `member add`?): "
                               f"peer URLs {sorted(mine)}")
        self.member_id, self.cluster_id = me.id, cluster_id
        self.wal = WAL.create(wal_dir, self._wal_meta())
        self.raft = self._new_raft(MemoryStorage(), 0)
        self.lg.info("joining an existing cluster", **{
            "local-member-id": f"{self.member_id:x}", "cluster-id": f"{self.cluster_id:x}"})

    def _restart(self, wal_dir: str) -> None:
        from pyetcd.wal import WAL

        # The newest snapshot the WAL has a marker for (a crash between writing a snapshot file
        # and its WAL marker leaves a newer file that must be ignored, as etcd does).
        snap = self.snapshotter.load_newest_available(WAL.snapshot_markers(wal_dir))
        s_index = snap.metadata.index if snap is not None else 0
        s_term = snap.metadata.term if snap is not None else 0
        self.wal, rs = WAL.open(wal_dir, snapshot_index=s_index, snapshot_term=s_term)
        meta = json.loads(rs.metadata.decode())
        self.member_id, self.cluster_id = meta["member_id"], meta["cluster_id"]
        storage = restore_storage(snap, rs)
        ci = self.backend.consistent_index
        commit = storage.initial_state()[0].commit
        # As etcd: Raft restarts from the snapshot and hands back every committed entry after it.
        # Conf changes among them rebuild Raft's configuration; entries at or below the backend's
        # consistent index are not applied to the store again.
        self.raft = self._new_raft(storage, s_index)
        if snap is not None:
            from pyetcd.raft import ConfState
            self.raft.conf_state = ConfState.from_pb(snap.metadata.conf_state)
        self.lg.info("restarting member from its data dir", **{
            "local-member-id": f"{self.member_id:x}", "cluster-id": f"{self.cluster_id:x}",
            "consistent-index": ci, "snapshot-index": s_index, "commit-index": commit,
            "wal-entries": len(rs.entries), "wal-repaired": bool(getattr(rs, "repaired", False))})

    def _wal_meta(self) -> bytes:
        return json.dumps({"member_id": self.member_id, "cluster_id": self.cluster_id}).encode()

    # ---- running -------------------------------------------------------------------------
    async def start(self) -> None:
        from pyetcd.api.lease import run_expiry

        self.stop_event = self.stop_event or asyncio.Event()
        await self._start_transport()
        self.raft.start()
        self._tasks.append(asyncio.create_task(self._run_backend_commits(), name="backend-commit"))
        self._tasks.append(asyncio.create_task(run_expiry(self, self.lessor), name="lease-expiry"))
        self.published = asyncio.Event()  # etcd's ReadyNotify: clients are served once it is set
        self._tasks.append(asyncio.create_task(self._publish_attributes(), name="publish"))

    async def _start_transport(self) -> None:
        try:
            from pyetcd.transport import Transport
        except ImportError:
            if len(self.membership.members) > 1 or self.cfg.initial_cluster_state == "existing":
                raise DataDirError("the peer transport is not available") from None
            return
        self.transport = Transport(
            self.member_id, self.cluster_id, on_messages=self.raft.step_messages,
            on_snapshot=self._snapshot_arrived, on_unreachable=self.raft.report_unreachable,
            on_snapshot_status=self.raft.report_snapshot, logger=self.lg,
            members_provider=self._members_info, lease_renew=self._lease_renew_local,
            lease_ttl=self._lease_ttl_local,
            is_removed=lambda mid: mid in self.membership.removed, on_removed=self._removed_by_peers,
            snapshot_dir=os.path.join(self.cfg.member_dir, "snap"),
            tls=getattr(self, "peer_tls", None),  # set by main.py (tlsconfig.peer_tls)
            check_client_san=not self.cfg.values.get("experimental-peer-skip-client-san-verification", False))
        await self.transport.start(self.cfg.listen_peer_urls)
        self.raft.transport = self.transport
        peers = {m.id: m.peer_urls for m in self.membership.members.values()}
        peers.update(dict(getattr(self, "_join_peers", [])))
        for pid, urls in peers.items():
            if pid != self.member_id:
                self.transport.add_peer(pid, urls)

    def _removed_by_peers(self) -> None:
        """Peers refuse us as a removed member: stop, as etcd does."""
        self.lg.warn("the member has been permanently removed from the cluster; stopping")
        if self.stop_event is not None:
            self.stop_event.set()

    def _members_info(self):
        return self.cluster_id, [(m.id, m.name, m.peer_urls, m.client_urls, m.is_learner)
                                 for m in self.membership.sorted()]

    async def _lease_renew_local(self, lease_id: int) -> int:
        return self.lessor.renew(lease_id)

    async def _lease_ttl_local(self, lease_id: int, keys: bool):
        ttl, granted, attached = self.lessor.time_to_live(lease_id)
        return ttl, granted, attached if keys else []

    async def _snapshot_arrived(self, msg_pb, db_path: str) -> None:
        self.raft.snapshot_received(msg_pb, db_path)

    async def stop(self) -> None:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        if self.raft is not None:
            await self.raft.stop()
        if self.transport is not None:
            await self.transport.stop()
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(errors.ErrStopped)
        self._waiters.clear()
        self.close()

    def close(self) -> None:
        if self.backend is not None:
            self.backend.force_commit()
            self.backend.close()
            self.backend = None
        if self.wal is not None:
            self.wal.close()
            self.wal = None

    async def _run_backend_commits(self) -> None:
        interval = self.cfg.backend_batch_interval or 0.1
        while not self._stopping:
            await asyncio.sleep(interval)
            self.backend.commit_if_due()

    async def _publish_attributes(self) -> None:
        """Publish this member's name and client URLs through the log (etcd's publish)."""
        req = raft_internal.InternalRaftRequest(member_attr=raft_internal.MemberAttrSetRequest(
            member_id=self.member_id, name=self.cfg.name, client_urls=self.cfg.advertise_client_urls))
        while not self._stopping:
            m = self.membership.members.get(self.member_id)
            if m is not None and m.name == self.cfg.name and m.client_urls == list(self.cfg.advertise_client_urls):
                self.published.set()  # already in the store from an earlier run: nothing to wait for
                return
            try:
                await self.propose(req)
            except errors.EtcdError:
                await asyncio.sleep(0.2)
                continue
            self.lg.info("published local member to cluster through raft", **{
                "local-member-id": f"{self.member_id:x}",
                "local-member-attributes": "{Name:%s ClientURLs:[%s]}" % (
                    self.cfg.name, " ".join(self.cfg.advertise_client_urls)),
                "cluster-id": f"{self.cluster_id:x}"})
            self.published.set()
            return

    def _on_leader_change(self, lead: int, is_leader: bool) -> None:
        if is_leader and not self._was_leader:
            self.lessor.promote(self.cfg.election_timeout / 1000)
        elif self._was_leader and not is_leader:
            self.lessor.demote()
        self._was_leader = is_leader

    # ---- proposals -----------------------------------------------------------------------
    def _next_id(self) -> int:
        self._req_seq += 1
        return (self.member_id & 0xFFFF) << 48 | (self._req_seq & ((1 << 48) - 1))

    async def propose(self, req):
        """Replicate and apply one InternalRaftRequest; return its response or raise its error."""
        if self._stopping:
            raise errors.ErrStopped
        rid = self._next_id()
        req.header.ID = rid
        stamp_header(req.header, self.auth)  # who asks (etcd: AuthInfoFromCtx)
        data = req.SerializeToString()
        if len(data) > self.cfg.max_request_bytes:
            raise errors.ErrRequestTooLarge
        return await self._replicate(rid, lambda: self.raft.propose(data))

    async def linearizable_read(self) -> None:
        try:
            await asyncio.wait_for(self.raft.read_index(), self.request_timeout)
        except asyncio.TimeoutError:
            raise errors.ErrTimeout from None

    async def propose_conf_change(self, cc) -> MemberInfo | None:
        """Validate, replicate and apply a membership change; returns the member concerned."""
        self.membership.validate(cc)
        cc.id = self._next_id()
        return await self._replicate(cc.id, lambda: self.raft.propose_conf_change(cc))

    async def _replicate(self, rid: int, hand_to_raft):
        """Hand a proposal to Raft and wait until the entry carrying `rid` is applied; the
        result (or error) comes from _apply_entry through _resolve."""
        fut = asyncio.get_running_loop().create_future()
        self._waiters[rid] = fut
        lead = self.raft.lead
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout  # etcd's one context for both waits
        try:
            try:  # waits while there is no leader (etcd's node blocks the proposal likewise)
                await asyncio.wait_for(hand_to_raft(), self.request_timeout)
            except asyncio.TimeoutError:
                self.proposals_timed_out += 1
                raise errors.ErrProposalDeadline from None
            return await asyncio.wait_for(fut, max(deadline - loop.time(), 0.001))
        except asyncio.TimeoutError:
            self.proposals_timed_out += 1
            raise (errors.ErrTimeoutDueToLeaderFail if self.raft.lead != lead else errors.ErrTimeout) from None
        finally:
            self._waiters.pop(rid, None)

    def _resolve(self, rid: int, result=None, err=None) -> None:
        fut = self._waiters.get(rid)
        if fut is not None and not fut.done():
            if err is not None:
                fut.set_exception(err)
            else:
                fut.set_result(result)

    # ---- apply ---------------------------------------------------------------------------
    def _apply_entry(self, e) -> None:
        """Apply one committed entry; the consistent index moves with it, error or not."""
        if e.index <= self.applied_index:  # already in the backend (replay after restart)
            if e.type == raftpb.EntryConfChange:
                self.raft.conf_state = self.raft.node.apply_conf_change(raftpb.ConfChange.FromString(e.data))
            elif e.type == raftpb.EntryConfChangeV2:
                self.raft.conf_state = self.raft.node.apply_conf_change(raftpb.ConfChangeV2.FromString(e.data))
            return
        try:
            if e.type == raftpb.EntryConfChange:
                self._apply_conf_change(raftpb.ConfChange.FromString(e.data))
            elif e.type == raftpb.EntryConfChangeV2:
                self.raft.conf_state = self.raft.node.apply_conf_change(raftpb.ConfChangeV2.FromString(e.data))
            elif e.data:
                r = raft_internal.InternalRaftRequest.FromString(e.data)
                try:
                    result = self._apply_request(r)
                except errors.EtcdError as err:
                    rid = r.header.ID
                    # etcd: the first over-quota apply raises NOSPACE before its client hears.
                    if not (err is errors.ErrNoSpace and not self.alarms.active(rpc.NOSPACE) and
                            raise_nospace_then(self, self.cfg.quota_backend_bytes, self.lg,
                                               lambda e=err: self._resolve(rid, err=e))):
                        self._resolve(rid, err=err)
                else:
                    self._resolve(r.header.ID, result)
        finally:
            self.applied_index = e.index
            self.backend.set_consistent_index(e.index, e.term)

    def _apply_conf_change(self, cc) -> None:
        try:
            self.membership.validate(cc)
        except errors.EtcdError as err:
            # etcd: an invalid change is applied as a no-op (node id None) and its proposer told why.
            noop = raftpb.ConfChange()
            noop.CopyFrom(cc)
            noop.node_id = 0
            self.raft.conf_state = self.raft.node.apply_conf_change(noop)
            self._resolve(cc.id, err=err)
            return
        self.raft.conf_state = self.raft.node.apply_conf_change(cc)
        m = self.membership.apply(cc)
        if self.transport is not None and m is not None and m.id != self.member_id:
            if cc.type == raftpb.ConfChangeRemoveNode:
                self.transport.remove_peer(m.id)
            elif cc.type == raftpb.ConfChangeUpdateNode:
                self.transport.update_peer(m.id, m.peer_urls)
            else:
                self.transport.add_peer(m.id, m.peer_urls)
        self._resolve(cc.id, m)
        if cc.type == raftpb.ConfChangeRemoveNode and cc.node_id == self.member_id:
            self.lg.warn("the member has been permanently removed from the cluster; stopping")
            if self.stop_event is not None:
                self.stop_event.set()

    def _apply_request(self, r):
        which = r.WhichOneof("request")
        handled, resp = self.auth_applier.apply(r, which, self.applied_index + 1)  # etcd's authApplierV3
        if handled:
            return resp
        if which == "alarm":
            return self.alarms.apply(r.alarm)
        over_quota = self.alarms.before_apply(which, r, self.quota)
        resp = self._apply_v3(r, which)
        if over_quota:  # applied all the same (etcd's quotaApplierV3)
            raise errors.ErrNoSpace
        return resp

    def _apply_v3(self, r, which):
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
        elif which == "member_attr":
            m = r.member_attr
            self.membership.set_attributes(m.member_id, m.name, m.client_urls)
            return None
        else:
            raise errors.unimplemented(f"request {which}")
        if events:
            for listener in self.event_listeners:
                listener(events)
        return resp

    async def _install_snapshot(self, snap, db_path: str | None) -> None:
        """Replace the backend with the leader's (received with a MsgSnap) and reload from it."""
        if db_path is None:
            raise RuntimeError(f"raft snapshot at index {snap.metadata.index} arrived without its backend")
        self.backend.force_commit()
        self.backend.close()
        target = self._db_path()
        for suffix in ("-wal", "-shm"):
            if os.path.exists(target + suffix):
                os.remove(target + suffix)
        os.replace(db_path, target)
        self._open_store()
        for hook in self.restore_hooks:
            hook(self.kv)
        if self.transport is not None:
            for m in self.membership.members.values():
                if m.id != self.member_id:
                    self.transport.add_peer(m.id, m.peer_urls)
        self.lg.info("installed a snapshot from the leader", **{
            "snapshot-index": snap.metadata.index, "consistent-index": self.applied_index})

    # ---- reads ---------------------------------------------------------------------------
    def read_txn(self, t):
        resp, _ = self.applier.txn(t, is_write=False)
        return resp
