"""The asyncio driver of the Raft core: ticks, inbox, Ready handling, persistence, ReadIndex.

One task runs the loop. Inputs (ticks, peer messages, proposals, read requests) are queued by
whoever produces them and the loop is woken; each turn feeds them to the RawNode and then
handles every Ready, in etcd's order:

    snapshot -> WAL (entries + hard state, fsync off the event loop) -> raft storage
    -> messages sent (a leader sends while its own fsync runs, a follower only after it:
       Raft thesis 10.2.1, as etcd does) -> committed entries applied -> advance.

The application (EtcdServer) supplies apply_entry(entry) and apply_snapshot(...) callbacks.
Nothing here knows about KV requests.
"""
from __future__ import annotations

import asyncio
import os
import struct
import time
from concurrent.futures import ThreadPoolExecutor

from pyetcd import errors
from pyetcd.pb import raftpb
from pyetcd.raft import (READ_ONLY_SAFE, Config, ConfState, HardState, MemoryStorage, Message,
                         ProposalDropped, RaftError, RawNode, Snapshot, entry_to_pb)
from pyetcd.raft.types import STATE_LEADER

# Entries kept in the raft log behind a snapshot so slow followers catch up without one (etcd).
SNAPSHOT_CATCHUP_ENTRIES = 5000
# How long a ReadIndex round may go unanswered before it is asked again (etcd's readIndexRetryTime).
READ_INDEX_RETRY = 0.5


class _RaftLogger:
    """Adapts the zap-style server logger to the raft core's printf-style logger."""

    def __init__(self, lg):
        self.lg = lg

    def _fmt(self, fmt, args):
        try:
            return fmt % args if args else fmt
        except (TypeError, ValueError):
            return f"{fmt} {args}"

    def debug(self, fmt, *args):
        pass

    def info(self, fmt, *args):
        self.lg.info(self._fmt(fmt, args), logger="raft")

    def warning(self, fmt, *args):
        self.lg.warn(self._fmt(fmt, args), logger="raft")

    def error(self, fmt, *args):
        self.lg.error(self._fmt(fmt, args), logger="raft")


class RaftNode:
    def __init__(self, *, member_id: int, cfg, lg, wal, snapshotter, storage: MemoryStorage,
                 applied: int, apply_entry, install_snapshot, make_snapshot_data, on_leader_change,
                 snapshot_db, before_snapshot, transport=None, conf_state: ConfState | None = None):
        self.id = member_id
        self.cfg = cfg
        self.lg = lg
        self.wal = wal
        self.snapshotter = snapshotter
        self.storage = storage
        self.transport = transport
        self.apply_entry = apply_entry              # (entry) -> None, on the loop, in log order
        self.install_snapshot = install_snapshot    # async (Snapshot, db_path | None) -> None
        self.make_snapshot_data = make_snapshot_data  # () -> bytes (membership for raft snapshots)
        self.on_leader_change = on_leader_change    # (lead: int, is_leader: bool) -> None
        self.snapshot_db = snapshot_db              # (path) -> None: a consistent backend copy
        self.before_snapshot = before_snapshot      # () -> None: backend durable up to `applied`
        election_ticks = max(2, cfg.election_timeout // cfg.heartbeat_interval)
        self.node = RawNode(Config(
            id=member_id, storage=storage, election_tick=election_ticks, heartbeat_tick=1,
            applied=applied, check_quorum=True, pre_vote=cfg.pre_vote,
            read_only_option=READ_ONLY_SAFE, max_inflight_msgs=512,
            max_size_per_msg=1024 * 1024, logger=_RaftLogger(lg)))
        self.election_ticks = election_ticks
        self.conf_state = conf_state or ConfState()
        self.applied = applied
        self.snapshot_index = storage.snapshot().metadata.index
        self.lead = 0
        self.term = storage.initial_state()[0].term
        self.commit = 0
        self.leader_changes = 0    # changes to a new known leader (etcd_server_leader_changes_seen_total)
        self.proposals_dropped = 0  # proposals Raft refused (counted in etcd_server_proposals_failed_total)
        self.sync = not cfg.unsafe_no_fsync
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="wal")
        self._wake = asyncio.Event()
        self._ticks = 0
        self._msgs: list = []
        self._props: list = []           # (data, future)
        self._conf_props: list = []      # (ConfChange, future)
        self._readers: list = []         # futures waiting for the next ReadIndex round
        self._read_rounds: dict = {}     # ctx -> futures of that round
        self._read_waits: list = []      # (index, futures) waiting for applied >= index
        self._read_seq = 0
        self._pending_snap_dbs: dict = {}  # snapshot index -> received db path
        self._transfer: asyncio.Future | None = None
        self._tasks: list = []
        self._stopped = False

    # ---- lifecycle -----------------------------------------------------------------------
    def bootstrap(self, peers) -> None:
        self.node.bootstrap(peers)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name="raft-loop"),
                       asyncio.create_task(self._ticker(), name="raft-ticker")]
        prs = self.node.raft.prs
        self.conf_state = prs.conf_state()
        if self.cfg.initial_election_tick_advance:
            # etcd fast-forwards election ticks on boot so the first election comes sooner.
            self._ticks += max(0, self.election_ticks - 2)
        self._maybe_campaign_alone()
        self._wake.set()

    def _maybe_campaign_alone(self) -> None:
        """A single voter needs no election timeout to lead: campaign once its config is applied."""
        prs = self.node.raft.prs
        if (self.lead == 0 and prs.is_singleton() and self.id in prs.conf_state().voters
                and self.applied >= self.node.raft.raft_log.committed):
            self.node.campaign()

    async def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        for _, fut in self._props + self._conf_props:
            if not fut.done():
                fut.set_exception(errors.ErrStopped)
        for fut in self._readers + [f for fs, _ in self._read_rounds.values() for f in fs]:
            if not fut.done():
                fut.set_exception(errors.ErrStopped)
        self._pool.shutdown(wait=True)

    # ---- inputs --------------------------------------------------------------------------
    async def _ticker(self) -> None:
        interval = self.cfg.heartbeat_interval / 1000.0
        while not self._stopped:
            await asyncio.sleep(interval)
            self._ticks += 1
            self._wake.set()

    def step_messages(self, msgs_pb: list) -> None:
        self._msgs.extend(msgs_pb)
        self._wake.set()

    def propose(self, data: bytes) -> asyncio.Future:
        """Queue a proposal; the future resolves when it was handed to Raft (not applied)."""
        fut = asyncio.get_running_loop().create_future()
        self._props.append((data, fut))
        self._wake.set()
        return fut

    def propose_conf_change(self, cc) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self._conf_props.append((cc, fut))
        self._wake.set()
        return fut

    async def read_index(self) -> None:
        """Wait until this member has applied everything committed before the call (ReadIndex).
        Concurrent callers share one round trip."""
        fut = asyncio.get_running_loop().create_future()
        self._readers.append(fut)
        self._wake.set()
        await fut

    def transfer_leadership(self, transferee: int) -> None:
        self.node.transfer_leader(transferee)
        self._wake.set()

    def report_unreachable(self, peer: int) -> None:
        self.node.report_unreachable(peer)

    def report_snapshot(self, peer: int, failed: bool) -> None:
        self.node.report_snapshot(peer, failed)
        self._wake.set()

    def snapshot_received(self, msg_pb, db_path: str) -> None:
        """A MsgSnap whose backend file arrived: raft decides; the file is installed with it."""
        self._pending_snap_dbs[msg_pb.snapshot.metadata.index] = db_path
        self.step_messages([msg_pb])

    @property
    def is_leader(self) -> bool:
        return self.lead == self.id and self.lead != 0

    def status(self):
        return self.node.status()

    # ---- the loop ------------------------------------------------------------------------
    async def _run(self) -> None:
        node = self.node
        while not self._stopped:
            await self._wake.wait()
            self._wake.clear()
            try:
                self._feed_inputs()
                while node.has_ready() and not self._stopped:
                    await self._handle_ready(node.ready())
                    self._feed_inputs()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the apply loop must not die silently: stop the member
                self.lg.fatal("raft loop failed; stopping", error=repr(e))
                import traceback
                traceback.print_exc()
                os._exit(1)

    def _feed_inputs(self) -> None:
        node = self.node
        while self._ticks > 0:
            self._ticks -= 1
            node.tick()
        if self._msgs:
            msgs, self._msgs = self._msgs, []
            for m in msgs:
                try:
                    node.step(Message.from_pb(m))
                except RaftError:
                    pass  # as etcd's node loop: a network message the core refuses is dropped
        # etcd's node takes no proposal while there is no leader (its propc is nil): proposals
        # wait here until one is known or their caller's request timeout ends them.
        if self._props and self.lead != 0:
            props, self._props = [p for p in self._props if not p[1].done()], []
            try:
                if props:
                    node.propose_batch([d for d, _ in props])
            except ProposalDropped:
                self.proposals_dropped += len(props)  # with a leader (e.g. while it transfers)
                for _, fut in props:
                    if not fut.done():
                        fut.set_exception(errors.ErrTimeout)
            else:
                for _, fut in props:
                    if not fut.done():
                        fut.set_result(None)
        if self._conf_props and self.lead != 0:
            ccs, self._conf_props = [p for p in self._conf_props if not p[1].done()], []
            for cc, fut in ccs:
                try:
                    node.propose_conf_change(cc)
                except ProposalDropped:
                    if not fut.done():
                        fut.set_exception(errors.ErrTimeout)
                    continue
                if not fut.done():
                    fut.set_result(None)
        if self._read_rounds:
            # A ReadIndex request or answer lost on the way is never retransmitted by Raft: ask
            # again after etcd's readIndexRetryTime (500 ms), for the same waiting readers.
            now = time.monotonic()
            for ctx, (futs, issued) in list(self._read_rounds.items()):
                if now - issued > READ_INDEX_RETRY:
                    del self._read_rounds[ctx]
                    self._readers.extend(f for f in futs if not f.done())
        if self._readers and not self._read_rounds:
            # One round in flight at a time (etcd's linearizableReadLoop): readers arriving
            # meanwhile wait for the next round, so one heartbeat quorum serves many reads.
            # Without a leader Raft drops the request; as etcd, the round is asked again every
            # 500 ms until a new leader fails it ("leader changed") or the caller's request
            # timeout ends it ("request timed out").
            self._read_seq += 1
            ctx = struct.pack(">Q", self._read_seq)
            self._read_rounds[ctx] = (self._readers, time.monotonic())
            self._readers = []
            node.read_index(ctx)

    async def _handle_ready(self, rd) -> None:
        if rd.soft_state is not None:
            self._soft_state_changed(rd.soft_state)
        if rd.snapshot is not None:
            await self._install_snapshot(rd.snapshot)
        if rd.hard_state is not None:
            self.term = rd.hard_state.term
            self.commit = rd.hard_state.commit
        save = None
        if rd.entries or rd.hard_state is not None:
            hs = rd.hard_state.to_pb() if rd.hard_state is not None else None
            ents = [entry_to_pb(e) for e in rd.entries]
            sync = self.sync and rd.must_sync
            save = asyncio.get_running_loop().run_in_executor(
                self._pool, lambda: self.wal.save(hs, ents, sync=sync))
        if self.is_leader and save is not None:
            self._send(rd.messages)  # in parallel with the leader's own fsync
            await save
        else:
            if save is not None:
                await save
            self._send(rd.messages)
        if rd.hard_state is not None:
            self.storage.set_hard_state(rd.hard_state)
        if rd.entries:
            self.storage.append(rd.entries)
        for rs in rd.read_states:
            round_ = self._read_rounds.pop(rs.request_ctx, None)
            if round_:
                self._read_waits.append((rs.index, round_[0]))
                if self._readers:
                    self._wake.set()  # the next round, for readers that queued meanwhile
        for e in rd.committed_entries:
            self.apply_entry(e)
            self.applied = e.index
        self._release_reads()
        self.node.advance(rd)
        if rd.committed_entries and self.lead == 0:
            self._maybe_campaign_alone()
        self._maybe_snapshot()

    def _send(self, msgs) -> None:
        if not msgs or self.transport is None:
            return
        plain = []
        for m in msgs:
            pb = m.to_pb()
            if pb.type == raftpb.MsgSnap:
                self._send_snapshot(pb)
            else:
                plain.append(pb)
        if plain:
            self.transport.send(plain)

    def _send_snapshot(self, msg_pb) -> None:
        """A consistent copy of the backend, streamed to the follower after the MsgSnap. The copy
        is made on the loop, the only thread that uses the backend; the transport streams it."""
        path = os.path.join(self.cfg.member_dir, "snap", f"send-{msg_pb.to:x}-{time.monotonic_ns()}.db")
        try:
            self.snapshot_db(path)
            self.transport.send_snapshot(msg_pb, path)
        except Exception as e:
            self.lg.warn("failed to prepare snapshot for peer", peer=f"{msg_pb.to:x}", error=repr(e))
            self.report_snapshot(msg_pb.to, True)

    def _release_reads(self) -> None:
        if not self._read_waits:
            return
        keep = []
        for index, futs in self._read_waits:
            if self.applied >= index:
                for fut in futs:
                    if not fut.done():
                        fut.set_result(None)
            else:
                keep.append((index, futs))
        self._read_waits = keep

    def _soft_state_changed(self, ss) -> None:
        old = self.lead
        self.lead = ss.lead
        if ss.lead != 0 and ss.lead != old:  # etcd counts a change to a known, different leader
            self.leader_changes += 1
        is_leader = ss.raft_state == STATE_LEADER
        if old != ss.lead:
            self.lg.info("raft leader changed", **{"leader": f"{ss.lead:x}", "term": self.term,
                                                   "is-leader": is_leader})
        if ss.lead != 0 and ss.lead != old:
            # etcd's leaderChanged (a new, known leader; not the loss of one): read rounds in
            # flight fail with "leader changed", and their callers retry.
            for ctx, (futs, _) in list(self._read_rounds.items()):
                for fut in futs:
                    if not fut.done():
                        fut.set_exception(errors.ErrLeaderChanged)
            self._read_rounds.clear()
        self.on_leader_change(ss.lead, is_leader)

    async def _install_snapshot(self, snap: Snapshot) -> None:
        index = snap.metadata.index
        db_path = self._pending_snap_dbs.pop(index, None)
        snap_pb = snap.to_pb()
        await self.install_snapshot(snap, db_path)
        self.snapshotter.save(snap_pb)
        self.wal.save_snapshot(index, snap.metadata.term)
        self.storage.apply_snapshot(snap)
        self.conf_state = snap.metadata.conf_state
        self.applied = max(self.applied, index)
        self.snapshot_index = index

    def _maybe_snapshot(self, force: bool = False) -> None:
        if not force and self.applied - self.snapshot_index <= self.cfg.snapshot_count:
            return
        index = self.applied
        if index <= self.snapshot_index:
            return
        self.before_snapshot()
        snap = self.storage.create_snapshot(index, self.conf_state, self.make_snapshot_data())
        self.snapshotter.save(snap.to_pb())
        self.wal.save_snapshot(index, snap.metadata.term)
        self.snapshot_index = index
        compact_to = index - getattr(self.cfg, "experimental_snapshot_catchup_entries", SNAPSHOT_CATCHUP_ENTRIES)
        if compact_to > self.storage.first_index():
            self.storage.compact(compact_to)
        self.wal.release_to(index)
        self.lg.info("saved snapshot and compacted the raft log", **{
            "snapshot-index": index, "compact-index": max(compact_to, 0)})


def restore_storage(snapshot_pb, rs) -> MemoryStorage:
    """MemoryStorage from the newest snapshot and the WAL's contents after it (etcd's restart)."""
    from pyetcd.raft import entry_from_pb

    st = MemoryStorage()
    if snapshot_pb is not None and snapshot_pb.metadata.index > 0:
        st.apply_snapshot(Snapshot.from_pb(snapshot_pb))
    hs = rs.hard_state
    if hs is not None and (hs.term or hs.vote or hs.commit):
        st.set_hard_state(HardState(hs.term, hs.vote, hs.commit))
    if rs.entries:
        st.append([entry_from_pb(e) for e in rs.entries])
    return st
