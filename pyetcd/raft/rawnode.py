"""RawNode: the application's handle on a Raft node, and the Ready it hands out.

The cycle (etcd's RawNode contract):

    rd = node.ready()            # only if node.has_ready()
    persist rd.snapshot, rd.entries, rd.hard_state   (durably when rd.must_sync)
    send rd.messages
    apply rd.committed_entries   (call node.apply_conf_change() for conf change entries)
    node.advance(rd)

Entries and hard state are durable before any message that depends on them leaves.
"""
from .raft import CAMPAIGN_ELECTION, Raft
from .types import (
    EMPTY_HARD_STATE, ENTRY_CONF_CHANGE, ENTRY_CONF_CHANGE_V2, Entry, HardState, LOCAL_MSGS,
    Message, MsgHup, MsgProp, MsgReadIndex, MsgSnapStatus, MsgTransferLeader, MsgUnreachable,
    RESPONSE_MSGS, CC_ADD_NODE, STATE_NAMES, RaftError, StepLocalMsg, StepPeerNotFound,
    conf_change_to_v2)


class Ready:
    """Everything the application must do in one cycle. Fields follow etcd's raft.Ready:

    soft_state: SoftState or None (only when lead/role changed; need not be persisted)
    hard_state: HardState, or None if unchanged; persist it with the entries
    read_states: ReadStates for linearizable reads
    entries: to append to stable storage before sending messages
    snapshot: Snapshot to install, or None
    committed_entries: to apply to the state machine (already persisted)
    messages: to send once entries/hard state are persisted
    must_sync: whether the writes must be fsynced (term, vote or log changed)
    """
    __slots__ = ("soft_state", "hard_state", "read_states", "entries", "snapshot",
                 "committed_entries", "messages", "must_sync")

    def __init__(self):
        self.soft_state = None
        self.hard_state = None
        self.read_states = []
        self.entries = []
        self.snapshot = None
        self.committed_entries = []
        self.messages = []
        self.must_sync = False

    def applied_cursor(self):
        if self.committed_entries:
            return self.committed_entries[-1].index
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return 0

    def messages_pb(self):
        return [m.to_pb() for m in self.messages]

    def entries_pb(self):
        from .types import entry_to_pb
        return [entry_to_pb(e) for e in self.entries]


class Peer:
    def __init__(self, id, context=b""):
        self.id = id
        self.context = context


class Status:
    def __init__(self, r):
        self.id = r.id
        self.hard_state = r.hard_state()
        self.soft_state = r.soft_state()
        self.applied = r.raft_log.applied
        self.lead_transferee = r.lead_transferee
        self.config = r.prs.config.copy()
        self.progress = {}
        if r.state == 2:  # leader: report each peer's replication progress
            self.progress = {i: (pr.match, pr.next, pr.state) for i, pr in r.prs.progress.items()}

    def __repr__(self):
        return "Status(id=%d, %r, lead=%d, state=%s, applied=%d)" % (
            self.id, self.hard_state, self.soft_state.lead, STATE_NAMES[self.soft_state.raft_state],
            self.applied)


class RawNode:
    def __init__(self, config):
        self.raft = Raft(config)
        self.prev_soft_state = self.raft.soft_state()
        self.prev_hard_state = self.raft.hard_state()

    # --- inputs -----------------------------------------------------------------------

    def tick(self):
        """Advance the logical clock by one tick (election/heartbeat timeouts count ticks)."""
        self.raft.tick()

    def campaign(self):
        self.raft.step(Message(type=MsgHup))

    def propose(self, data):
        """Propose data; raises ProposalDropped if it cannot be appended or forwarded."""
        self.raft.step(Message(type=MsgProp, from_=self.raft.id,
                               entries=[Entry(0, 0, 0, data)]))

    def propose_batch(self, datas):
        """Propose several entries in one MsgProp: one append, one MsgApp per follower."""
        self.raft.step(Message(type=MsgProp, from_=self.raft.id,
                               entries=[Entry(0, 0, 0, d) for d in datas]))

    def propose_conf_change(self, cc):
        """cc: raftpb.ConfChange (v1) or raftpb.ConfChangeV2. It is applied on commit, when
        the application calls apply_conf_change()."""
        from pyetcd.pb import raftpb
        t = ENTRY_CONF_CHANGE if isinstance(cc, raftpb.ConfChange) else ENTRY_CONF_CHANGE_V2
        self.raft.step(Message(type=MsgProp, from_=self.raft.id,
                               entries=[Entry(0, 0, t, cc.SerializeToString())]))

    def apply_conf_change(self, cc):
        """Apply a committed conf change (v1 or v2, raftpb). Returns the new ConfState."""
        return self.raft.apply_conf_change(conf_change_to_v2(cc))

    def step(self, m):
        """Deliver a message from the network."""
        if m.type in LOCAL_MSGS:
            raise StepLocalMsg()
        if m.from_ in self.raft.prs.progress or m.type not in RESPONSE_MSGS:
            self.raft.step(m)
            return
        raise StepPeerNotFound()

    def read_index(self, rctx):
        """Request a read index; the answer comes back as a ReadState carrying rctx."""
        self.raft.step(Message(type=MsgReadIndex, entries=[Entry(0, 0, 0, rctx)]))

    def transfer_leader(self, transferee):
        self.raft.step(Message(type=MsgTransferLeader, from_=transferee))

    def report_unreachable(self, id_):
        try:
            self.raft.step(Message(type=MsgUnreachable, from_=id_))
        except RaftError:
            pass

    def report_snapshot(self, id_, failed):
        try:
            self.raft.step(Message(type=MsgSnapStatus, from_=id_, reject=failed))
        except RaftError:
            pass

    # --- output -----------------------------------------------------------------------

    def has_ready(self):
        r = self.raft
        if r.soft_state() != self.prev_soft_state:
            return True
        hs = r.hard_state()
        if not hs.is_empty() and hs != self.prev_hard_state:
            return True
        rl = r.raft_log
        if rl.has_pending_snapshot():
            return True
        if r.msgs or rl.unstable.entries or rl.has_next_ents():
            return True
        return bool(r.read_states)

    def ready(self):
        r = self.raft
        rl = r.raft_log
        rd = Ready()
        rd.entries = rl.unstable_entries()
        rd.committed_entries = rl.next_ents()
        rd.messages = r.msgs
        r.msgs = []
        ss = r.soft_state()
        if ss != self.prev_soft_state:
            rd.soft_state = ss
            self.prev_soft_state = ss
        hs = r.hard_state()
        if hs != self.prev_hard_state:
            rd.hard_state = hs
        if rl.has_pending_snapshot():
            rd.snapshot = rl.unstable.snapshot
        if r.read_states:
            rd.read_states = r.read_states
            r.read_states = []
        prev = self.prev_hard_state
        rd.must_sync = bool(rd.entries) or (rd.hard_state is not None and (
            hs.term != prev.term or hs.vote != prev.vote))
        return rd

    def advance(self, rd):
        """Acknowledge that rd was persisted, sent and applied."""
        r = self.raft
        if rd.hard_state is not None and not rd.hard_state.is_empty():
            self.prev_hard_state = rd.hard_state
        r.reduce_uncommitted_size(rd.committed_entries)
        applied = rd.applied_cursor()
        if applied > 0:
            r.advance_applied(applied)
        if rd.entries:
            e = rd.entries[-1]
            r.raft_log.stable_to(e.index, e.term)
        if rd.snapshot is not None:
            r.raft_log.stable_snap_to(rd.snapshot.metadata.index)

    def status(self):
        return Status(self.raft)

    def bootstrap(self, peers):
        """Start a new cluster: the log gets one AddNode conf change per peer, committed.

        Storage must be empty. Most users start from a snapshot-carrying storage instead.
        """
        from pyetcd.pb import raftpb
        if not peers:
            raise RaftError("must provide at least one peer to Bootstrap")
        r = self.raft
        if r.raft_log.storage.last_index() != 0:
            raise RaftError("can't bootstrap a nonempty Storage")
        self.prev_hard_state = EMPTY_HARD_STATE
        r.become_follower(1, 0)
        ents = []
        for i, p in enumerate(peers):
            cc = raftpb.ConfChange(type=CC_ADD_NODE, node_id=p.id, context=p.context)
            ents.append(Entry(1, i + 1, ENTRY_CONF_CHANGE, cc.SerializeToString()))
        r.raft_log.append(ents)
        r.raft_log.committed = len(ents)
        for p in peers:
            r.apply_conf_change(conf_change_to_v2(raftpb.ConfChange(type=CC_ADD_NODE,
                                                                   node_id=p.id)))


__all__ = ["RawNode", "Ready", "Peer", "Status", "HardState", "CAMPAIGN_ELECTION", "MsgHup"]
