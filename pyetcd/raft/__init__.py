"""pyetcd.raft: a sans-IO Raft consensus core, modelled on etcd's raft library.

Nothing here touches sockets, files, clocks, threads or asyncio. The application drives a
RawNode and performs all I/O itself.

Public API
----------
Config(id, storage, election_tick=10, heartbeat_tick=1, applied=0,
       max_size_per_msg=1MiB, max_committed_size_per_ready=None,
       max_uncommitted_entries_size=0, max_inflight_msgs=256, check_quorum=False,
       pre_vote=False, read_only_option=READ_ONLY_SAFE, disable_proposal_forwarding=False,
       step_down_on_removal=False, logger=None, rand=None)
    rand (random.Random-like, randrange) and logger (debug/info/warning/error(fmt, *args))
    are injected so that runs are reproducible.

RawNode(config)
    Inputs:  tick(); campaign(); propose(data); propose_batch([data...]);
             propose_conf_change(cc);
             apply_conf_change(cc) -> ConfState; step(msg); read_index(ctx);
             transfer_leader(id); report_unreachable(id); report_snapshot(id, failed);
             bootstrap([Peer(id)]).
    Output:  has_ready(); ready() -> Ready; advance(ready); status().
    propose* raise ProposalDropped where etcd returns ErrProposalDropped (no leader,
    forwarding disabled, leadership transfer in progress, uncommitted size limit).

Ready: soft_state, hard_state, read_states, entries, snapshot, committed_entries,
    messages, must_sync. Persist snapshot+entries+hard_state (fsync if must_sync), then send
    messages, apply committed entries, then advance(ready).

Storage protocol (read-only for Raft): initial_state() -> (HardState, ConfState),
    entries(lo, hi, max_size), term(i), first_index(), last_index(), snapshot().
    MemoryStorage implements it, plus the writes: append(ents), set_hard_state(hs),
    apply_snapshot(snap), create_snapshot(i, cs, data), compact(i).

Value types (types.py): Entry(term, index, type, data), Message, HardState, Snapshot,
    SnapshotMetadata, ConfState, ReadState, SoftState; each converts with to_pb()/from_pb()
    (Entry: entry_to_pb/entry_from_pb; encode_entry/decode_entry give raftpb bytes).
    Conf changes are raftpb.ConfChange / raftpb.ConfChangeV2 protobufs.

Errors: ProposalDropped (also raised by step() for a forwarded MsgProp the receiver cannot
    take; a server ignores errors from network messages, as etcd's node loop does),
    StepLocalMsg, StepPeerNotFound, Compacted/Unavailable (storage).

describe.py renders entries, messages and Ready values as text (logs, interaction tests).

Native code: pyetcd._native.raft_* (Cython) replaces the hot paths (Entry, entry size and
encoding, the unstable log, inflights, quorum commit index) when built. PYETCD_RAFT_PURE=1
forces the plain-Python reference implementations (used for cross-checks and benchmarks).
"""
from .raft import Config, NullLogger, Raft
from .rawnode import Peer, RawNode, Ready, Status
from .read_only import READ_ONLY_LEASE_BASED, READ_ONLY_SAFE
from .storage import (Compacted, MemoryStorage, SnapOutOfDate, SnapshotTemporarilyUnavailable,
                      Unavailable)
from .types import (
    ConfState, Entry, HardState, Message, ProposalDropped, RaftError, ReadState, Snapshot,
    SnapshotMetadata, SoftState, StepLocalMsg, StepPeerNotFound, decode_entry, encode_entry,
    entry_from_pb, entry_to_pb)

__all__ = [
    "Config", "NullLogger", "Raft", "Peer", "RawNode", "Ready", "Status",
    "READ_ONLY_LEASE_BASED", "READ_ONLY_SAFE", "Compacted", "MemoryStorage", "SnapOutOfDate",
    "SnapshotTemporarilyUnavailable", "Unavailable", "ConfState", "Entry", "HardState",
    "Message", "ProposalDropped", "RaftError", "ReadState", "Snapshot", "SnapshotMetadata",
    "SoftState", "StepLocalMsg", "StepPeerNotFound", "decode_entry", "encode_entry",
    "entry_from_pb", "entry_to_pb",
]
