"""Leaf module: the value types Raft passes around, and their raftpb conversions.

Internally Raft uses small slotted classes (or their Cython twins from
pyetcd._native.raft_log) because building protobuf objects on the hot path is
slow. Every type converts to and from the raftpb wire message with to_pb()/from_pb():
the peer transport and the WAL speak raftpb.

Field names follow etcd's raftpb in snake_case (Message.from_ because `from` is a keyword).
"""
import os

NONE = 0  # "no node": etcd's raft.None

# raftpb.EntryType
ENTRY_NORMAL = 0
ENTRY_CONF_CHANGE = 1
ENTRY_CONF_CHANGE_V2 = 2
ENTRY_TYPE_NAMES = {0: "EntryNormal", 1: "EntryConfChange", 2: "EntryConfChangeV2"}

# raftpb.MessageType, same numbers as etcd.
MsgHup = 0
MsgBeat = 1
MsgProp = 2
MsgApp = 3
MsgAppResp = 4
MsgVote = 5
MsgVoteResp = 6
MsgSnap = 7
MsgHeartbeat = 8
MsgHeartbeatResp = 9
MsgUnreachable = 10
MsgSnapStatus = 11
MsgCheckQuorum = 12
MsgTransferLeader = 13
MsgTimeoutNow = 14
MsgReadIndex = 15
MsgReadIndexResp = 16
MsgPreVote = 17
MsgPreVoteResp = 18

MSG_NAMES = [
    "MsgHup", "MsgBeat", "MsgProp", "MsgApp", "MsgAppResp", "MsgVote", "MsgVoteResp",
    "MsgSnap", "MsgHeartbeat", "MsgHeartbeatResp", "MsgUnreachable", "MsgSnapStatus",
    "MsgCheckQuorum", "MsgTransferLeader", "MsgTimeoutNow", "MsgReadIndex",
    "MsgReadIndexResp", "MsgPreVote", "MsgPreVoteResp",
]

# Messages that never leave the node (etcd's IsLocalMsg).
LOCAL_MSGS = frozenset({MsgHup, MsgBeat, MsgUnreachable, MsgSnapStatus, MsgCheckQuorum})
# Responses (etcd's IsResponseMsg): a response from an unknown peer is dropped by RawNode.
RESPONSE_MSGS = frozenset({MsgAppResp, MsgVoteResp, MsgHeartbeatResp, MsgUnreachable,
                           MsgPreVoteResp})


def vote_resp_type(t):
    return MsgVoteResp if t == MsgVote else MsgPreVoteResp


# Node states (etcd's StateType).
STATE_FOLLOWER = 0
STATE_CANDIDATE = 1
STATE_LEADER = 2
STATE_PRE_CANDIDATE = 3
STATE_NAMES = ["StateFollower", "StateCandidate", "StateLeader", "StatePreCandidate"]

# raftpb.ConfChangeType / ConfChangeTransition
CC_ADD_NODE = 0
CC_REMOVE_NODE = 1
CC_UPDATE_NODE = 2
CC_ADD_LEARNER_NODE = 3
CC_TRANSITION_AUTO = 0
CC_TRANSITION_JOINT_IMPLICIT = 1
CC_TRANSITION_JOINT_EXPLICIT = 2


class _PyEntry:
    """One log entry. data is the serialized request (or ConfChange/ConfChangeV2)."""
    __slots__ = ("term", "index", "type", "data")

    def __init__(self, term=0, index=0, type=0, data=b""):
        self.term = term
        self.index = index
        self.type = type
        self.data = data

    def __eq__(self, other):
        return (self.term == other.term and self.index == other.index
                and self.type == other.type and self.data == other.data)

    def __repr__(self):
        return "Entry(term=%d, index=%d, type=%d, data=%r)" % (
            self.term, self.index, self.type, self.data)


def _py_entry_size(e):
    """Size of the entry's raftpb encoding (proto3: zero fields omitted); this is what the
    max-message-size limit counts, as in etcd."""
    n = 0
    if e.type:
        n += 1 + _varint_len(e.type)
    if e.term:
        n += 1 + _varint_len(e.term)
    if e.index:
        n += 1 + _varint_len(e.index)
    ln = len(e.data)
    if ln:
        n += 1 + _varint_len(ln) + ln
    return n


def _varint_len(v):
    n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


def _py_limit_size(ents, max_size):
    """Longest prefix of ents whose total size stays within max_size; at least one entry."""
    if not ents:
        return ents
    size = _py_entry_size(ents[0])
    n = 1
    ln = len(ents)
    while n < ln:
        size += _py_entry_size(ents[n])
        if size > max_size:
            break
        n += 1
    return ents[:n] if n < ln else ents


def _py_encode_entry(e):
    return entry_to_pb(e).SerializeToString()


def _py_decode_entry(buf):
    from pyetcd.pb import raftpb
    p = raftpb.Entry()
    p.ParseFromString(buf)
    return entry_from_pb(p)


def native_disabled():
    """PYETCD_RAFT_PURE=1 forces the plain-Python reference implementations."""
    return os.environ.get("PYETCD_RAFT_PURE", "") not in ("", "0")


Entry = _PyEntry
entry_size = _py_entry_size
limit_size = _py_limit_size
encode_entry = _py_encode_entry
decode_entry = _py_decode_entry
NATIVE_ENTRY = False
if not native_disabled():
    try:
        from pyetcd._native import raft_log as _ne
        Entry = _ne.Entry
        entry_size = _ne.entry_size
        limit_size = _ne.limit_size
        encode_entry = _ne.encode_entry
        decode_entry = _ne.decode_entry
        NATIVE_ENTRY = True
    except ImportError:  # not built: the plain-Python reference serves
        pass


def payloads_size(ents):
    """Bytes of Data carried by ents (etcd's payloadsSize, for the uncommitted-size limit)."""
    return sum(len(e.data) for e in ents)


def entry_to_pb(e):
    from pyetcd.pb import raftpb
    return raftpb.Entry(Term=e.term, Index=e.index, Type=e.type, Data=e.data)


def entry_from_pb(p):
    return Entry(p.Term, p.Index, int(p.Type), bytes(p.Data))


class ConfState:
    """Membership: voters (incoming), learners, voters_outgoing (joint), learners_next."""
    __slots__ = ("voters", "learners", "voters_outgoing", "learners_next", "auto_leave")

    def __init__(self, voters=(), learners=(), voters_outgoing=(), learners_next=(),
                 auto_leave=False):
        self.voters = sorted(voters)
        self.learners = sorted(learners)
        self.voters_outgoing = sorted(voters_outgoing)
        self.learners_next = sorted(learners_next)
        self.auto_leave = auto_leave

    def __eq__(self, o):
        return (self.voters == o.voters and self.learners == o.learners
                and self.voters_outgoing == o.voters_outgoing
                and self.learners_next == o.learners_next and self.auto_leave == o.auto_leave)

    def __repr__(self):
        s = "Voters:%s" % _ids(self.voters)
        if self.voters_outgoing:
            s += "&&%s" % _ids(self.voters_outgoing)
        if self.learners:
            s += " Learners:%s" % _ids(self.learners)
        if self.learners_next:
            s += " LearnersNext:%s" % _ids(self.learners_next)
        if self.auto_leave:
            s += " AutoLeave:true"
        return s

    def to_pb(self):
        from pyetcd.pb import raftpb
        return raftpb.ConfState(voters=self.voters, learners=self.learners,
                                voters_outgoing=self.voters_outgoing,
                                learners_next=self.learners_next, auto_leave=self.auto_leave)

    @classmethod
    def from_pb(cls, p):
        return cls(p.voters, p.learners, p.voters_outgoing, p.learners_next, p.auto_leave)


def _ids(ids):
    return "(" + " ".join(str(i) for i in ids) + ")"


class SnapshotMetadata:
    __slots__ = ("conf_state", "index", "term")

    def __init__(self, conf_state=None, index=0, term=0):
        self.conf_state = conf_state if conf_state is not None else ConfState()
        self.index = index
        self.term = term


class Snapshot:
    __slots__ = ("data", "metadata")

    def __init__(self, data=b"", metadata=None):
        self.data = data
        self.metadata = metadata if metadata is not None else SnapshotMetadata()

    def is_empty(self):
        return self.metadata.index == 0

    def to_pb(self):
        from pyetcd.pb import raftpb
        m = self.metadata
        return raftpb.Snapshot(data=self.data, metadata=raftpb.SnapshotMetadata(
            conf_state=m.conf_state.to_pb(), index=m.index, term=m.term))

    @classmethod
    def from_pb(cls, p):
        m = p.metadata
        return cls(bytes(p.data), SnapshotMetadata(ConfState.from_pb(m.conf_state), m.index, m.term))


EMPTY_SNAPSHOT = Snapshot()


class HardState:
    """What must be durable before messages leave: term, vote, commit (Raft paper fig. 2)."""
    __slots__ = ("term", "vote", "commit")

    def __init__(self, term=0, vote=0, commit=0):
        self.term = term
        self.vote = vote
        self.commit = commit

    def __eq__(self, o):
        return self.term == o.term and self.vote == o.vote and self.commit == o.commit

    def is_empty(self):
        return self.term == 0 and self.vote == 0 and self.commit == 0

    def __repr__(self):
        return "HardState(term=%d, vote=%d, commit=%d)" % (self.term, self.vote, self.commit)

    def to_pb(self):
        from pyetcd.pb import raftpb
        return raftpb.HardState(term=self.term, vote=self.vote, commit=self.commit)

    @classmethod
    def from_pb(cls, p):
        return cls(p.term, p.vote, p.commit)


EMPTY_HARD_STATE = HardState()


class Message:
    """A Raft message. Term 0 marks a local message (or a forwarded MsgProp/MsgReadIndex)."""
    __slots__ = ("type", "to", "from_", "term", "log_term", "index", "entries", "commit",
                 "snapshot", "reject", "reject_hint", "context")

    def __init__(self, type=0, to=0, from_=0, term=0, log_term=0, index=0, entries=(),
                 commit=0, snapshot=None, reject=False, reject_hint=0, context=b""):
        self.type = type
        self.to = to
        self.from_ = from_
        self.term = term
        self.log_term = log_term
        self.index = index
        self.entries = entries
        self.commit = commit
        self.snapshot = snapshot
        self.reject = reject
        self.reject_hint = reject_hint
        self.context = context

    def __repr__(self):
        return "Message(%s %d->%d term=%d)" % (MSG_NAMES[self.type], self.from_, self.to, self.term)

    def to_pb(self):
        from pyetcd.pb import raftpb
        p = raftpb.Message(type=self.type, to=self.to, term=self.term, logTerm=self.log_term,
                           index=self.index, commit=self.commit, reject=self.reject,
                           rejectHint=self.reject_hint, context=self.context)
        setattr(p, "from", self.from_)
        if self.entries:
            p.entries.extend(entry_to_pb(e) for e in self.entries)
        if self.snapshot is not None:
            p.snapshot.CopyFrom(self.snapshot.to_pb())
        return p

    @classmethod
    def from_pb(cls, p):
        snap = Snapshot.from_pb(p.snapshot) if p.HasField("snapshot") else None
        return cls(int(p.type), p.to, getattr(p, "from"), p.term, p.logTerm, p.index,
                   [entry_from_pb(e) for e in p.entries], p.commit, snap, p.reject,
                   p.rejectHint, bytes(p.context))


def conf_change_to_v2(cc):
    """Turn a raftpb.ConfChange (v1) into the equivalent raftpb.ConfChangeV2."""
    from pyetcd.pb import raftpb
    if isinstance(cc, raftpb.ConfChangeV2):
        return cc
    return raftpb.ConfChangeV2(changes=[raftpb.ConfChangeSingle(type=cc.type, node_id=cc.node_id)],
                               context=cc.context)


def conf_change_enter_joint(cc2):
    """(auto_leave, True) if applying cc2 must enter a joint configuration, else (False, False).

    As in etcd: any explicit transition, or more than one change, goes through joint consensus.
    """
    if cc2.transition != CC_TRANSITION_AUTO or len(cc2.changes) > 1:
        return cc2.transition in (CC_TRANSITION_AUTO, CC_TRANSITION_JOINT_IMPLICIT), True
    return False, False


def conf_change_leave_joint(cc2):
    """An empty ConfChangeV2 (context aside) is the request to leave a joint configuration."""
    return cc2.transition == CC_TRANSITION_AUTO and len(cc2.changes) == 0


def decode_conf_change(entry):
    """The raftpb.ConfChangeV2 carried by a conf change entry (v1 entries are converted)."""
    from pyetcd.pb import raftpb
    if entry.type == ENTRY_CONF_CHANGE:
        cc = raftpb.ConfChange()
        cc.ParseFromString(entry.data)
        return conf_change_to_v2(cc)
    cc = raftpb.ConfChangeV2()
    cc.ParseFromString(entry.data)
    return cc


class ReadState:
    """A linearizable read may be served once the local apply index reaches index."""
    __slots__ = ("index", "request_ctx")

    def __init__(self, index, request_ctx):
        self.index = index
        self.request_ctx = request_ctx

    def __eq__(self, o):
        return self.index == o.index and self.request_ctx == o.request_ctx

    def __repr__(self):
        return "ReadState(index=%d, ctx=%r)" % (self.index, self.request_ctx)


class SoftState:
    """Volatile state worth reporting: who leads, and our role. Need not be persisted."""
    __slots__ = ("lead", "raft_state")

    def __init__(self, lead, raft_state):
        self.lead = lead
        self.raft_state = raft_state

    def __eq__(self, o):
        return o is not None and self.lead == o.lead and self.raft_state == o.raft_state


class RaftError(Exception):
    pass


class ProposalDropped(RaftError):
    """etcd's ErrProposalDropped: no leader, forwarding disabled, transfer in progress..."""


class StepLocalMsg(RaftError):
    """A local message type (MsgHup, MsgBeat...) arrived through the network path."""


class StepPeerNotFound(RaftError):
    """A response from a peer that is not in the configuration."""
