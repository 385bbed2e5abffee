"""Unit tests of the pure pieces: storage, log, progress, conf changes, RawNode contract."""
import random

import pytest

from pyetcd.pb import raftpb
from pyetcd.raft import (Compacted, Config, ConfState, Entry, HardState, MemoryStorage, Message,
                         Peer, ProposalDropped, RawNode, Snapshot, SnapshotMetadata,
                         StepLocalMsg, Unavailable)
from pyetcd.raft.confchange import Changer, ConfChangeError, restore
from pyetcd.raft.log import RaftLog
from pyetcd.raft.raft import NullLogger
from pyetcd.raft.tracker import ProgressTracker
from pyetcd.raft.types import (CC_ADD_LEARNER_NODE, CC_ADD_NODE, CC_REMOVE_NODE, MsgApp,
                               MsgBeat, entry_from_pb, entry_to_pb)


def _storage(n, term=1):
    s = MemoryStorage()
    s.append([Entry(term, i) for i in range(1, n + 1)])
    return s


def test_memory_storage_bounds_and_compaction():
    s = _storage(10)
    assert (s.first_index(), s.last_index()) == (1, 10)
    assert [e.index for e in s.entries(3, 6)] == [3, 4, 5]
    s.create_snapshot(5, ConfState([1]), b"state")
    s.compact(5)
    assert (s.first_index(), s.last_index()) == (6, 10)
    assert s.term(5) == 1
    with pytest.raises(Compacted):
        s.entries(5, 7)
    with pytest.raises(Compacted):
        s.term(4)
    with pytest.raises(Unavailable):
        s.entries(6, 12)
    # Appending a conflicting suffix replaces it; appending below the start is ignored.
    s.append([Entry(2, 8), Entry(2, 9)])
    assert [(e.term, e.index) for e in s.entries(6, 10)] == [(1, 6), (1, 7), (2, 8), (2, 9)]


def test_raft_log_maybe_append_conflict_and_commit():
    rl = RaftLog(_storage(5), NullLogger())
    assert rl.maybe_append(5, 2, 5, [Entry(2, 6)]) is None  # term mismatch at 5
    last = rl.maybe_append(3, 1, 4, [Entry(2, 4), Entry(2, 5), Entry(2, 6)])
    assert last == 6 and rl.committed == 4
    assert [rl.term(i) for i in range(1, 7)] == [1, 1, 1, 2, 2, 2]
    # Only entries of the given term commit by counting (Raft paper 5.4.2).
    assert not rl.maybe_commit(6, 3)
    assert rl.maybe_commit(6, 2) and rl.committed == 6
    with pytest.raises(RuntimeError):
        rl.maybe_append(3, 1, 6, [Entry(3, 4)])  # would overwrite committed entries


def test_find_conflict_by_term_skips_a_term():
    s = MemoryStorage()
    s.append([Entry(1, 1), Entry(2, 2), Entry(2, 3), Entry(4, 4), Entry(4, 5)])
    rl = RaftLog(s, NullLogger())
    assert rl.find_conflict_by_term(5, 3) == 3
    assert rl.find_conflict_by_term(5, 1) == 1
    assert rl.find_conflict_by_term(5, 4) == 5
    assert rl.find_conflict_by_term(9, 1) == 9  # beyond our log: unchanged


def test_conf_change_rules():
    trk = ProgressTracker(16)
    cfg, prs = restore(Changer(trk, 10), ConfState([1, 2, 3], [4]))
    trk.config, trk.progress = cfg, prs
    with pytest.raises(ConfChangeError):
        Changer(trk, 10).simple([(CC_ADD_NODE, 5), (CC_REMOVE_NODE, 1)])
    with pytest.raises(ConfChangeError):
        Changer(trk, 10).simple([(CC_REMOVE_NODE, i) for i in (1, 2, 3)])
    cfg, prs = Changer(trk, 10).enter_joint(True, [(CC_ADD_NODE, 4), (CC_ADD_LEARNER_NODE, 1)])
    assert cfg.voters.incoming == {2, 3, 4} and cfg.voters.outgoing == {1, 2, 3}
    assert cfg.learners_next == {1} and not prs[1].is_learner
    trk.config, trk.progress = cfg, prs
    with pytest.raises(ConfChangeError):
        Changer(trk, 10).enter_joint(False, [(CC_ADD_NODE, 5)])
    cfg, prs = Changer(trk, 10).leave_joint()
    assert cfg.voters.incoming == {2, 3, 4} and not cfg.voters.outgoing
    assert cfg.learners == {1} and prs[1].is_learner
    # Restoring the ConfState of a joint config rebuilds the same config.
    cs = ConfState([2, 3, 4], [], [1, 2, 3], [1], True)
    t2 = ProgressTracker(16)
    cfg2, _ = restore(Changer(t2, 10), cs)
    assert t2.conf_state() == cs


def test_pb_round_trips():
    m = Message(MsgApp, 2, 1, 3, 2, 7, [Entry(3, 8, 0, b"x")], 6, None, True, 4, b"ctx")
    back = Message.from_pb(m.to_pb())
    assert (back.type, back.to, back.from_, back.term, back.log_term, back.index, back.commit,
            back.reject, back.reject_hint, back.context) == (MsgApp, 2, 1, 3, 2, 7, 6, True, 4,
                                                             b"ctx")
    assert back.entries == [Entry(3, 8, 0, b"x")]
    snap = Snapshot(b"d", SnapshotMetadata(ConfState([1, 2], [3]), 9, 2))
    s2 = Snapshot.from_pb(snap.to_pb())
    assert (s2.data, s2.metadata.index, s2.metadata.term) == (b"d", 9, 2)
    assert s2.metadata.conf_state == ConfState([1, 2], [3])
    assert HardState.from_pb(HardState(3, 2, 9).to_pb()) == HardState(3, 2, 9)
    assert entry_from_pb(entry_to_pb(Entry(1, 2, 1, b"q"))) == Entry(1, 2, 1, b"q")


def _single_node():
    s = MemoryStorage()
    rn = RawNode(Config(1, s, rand=random.Random(1)))
    rn.bootstrap([Peer(1)])
    return rn, s


def _cycle(rn, s):
    rd = rn.ready()
    s.append(rd.entries)
    if rd.hard_state is not None:
        s.set_hard_state(rd.hard_state)
    out = list(rd.committed_entries)
    rn.advance(rd)
    return rd, out


def test_single_node_bootstrap_campaign_propose():
    rn, s = _single_node()
    with pytest.raises(ProposalDropped):
        rn.propose(b"early")  # no leader yet
    rd, applied = _cycle(rn, s)
    assert [e.type for e in applied] == [1]  # the bootstrap AddNode conf change
    for e in applied:
        rn.apply_conf_change(raftpb.ConfChange.FromString(e.data))
    rn.campaign()
    rd, _ = _cycle(rn, s)
    assert rd.soft_state.lead == 1 and rd.must_sync
    rn.propose(b"a")
    rn.read_index(b"r")
    rd, applied = _cycle(rn, s)
    assert [e.data for e in applied][-1] == b"a"
    # A single voter answers at once, at its commit index (which already includes "a").
    assert [(r.index, r.request_ctx) for r in rd.read_states] == [(applied[-1].index, b"r")]
    assert not rn.has_ready()
    with pytest.raises(StepLocalMsg):
        rn.step(Message(type=MsgBeat, from_=1))


def test_restart_keeps_persisted_state_only():
    rn, s = _single_node()
    rd, applied = _cycle(rn, s)
    for e in applied:
        rn.apply_conf_change(raftpb.ConfChange.FromString(e.data))
    rn.campaign()
    _cycle(rn, s)
    rn.propose(b"persisted")
    _cycle(rn, s)
    rn.propose(b"lost")  # never handed out in a Ready: lost on restart
    s.snap.metadata.conf_state = ConfState([1])
    rn2 = RawNode(Config(1, s, applied=s.hard_state.commit, rand=random.Random(2)))
    ents = rn2.raft.raft_log.all_entries()
    assert [e.data for e in ents][-1] == b"persisted"
    assert rn2.raft.term == rn.raft.term and rn2.raft.vote == 1


class _Net:
    """Three in-process nodes; deliver() runs Ready cycles until quiet."""

    def __init__(self, **kw):
        from pyetcd.raft.storage import new_memory_storage_with_conf
        self.st = {i: new_memory_storage_with_conf([1, 2, 3], index=1, term=1) for i in (1, 2, 3)}
        self.n = {i: RawNode(Config(i, self.st[i], rand=random.Random(i), **kw)) for i in (1, 2, 3)}
        self.reads = {i: [] for i in (1, 2, 3)}
        self.sent = []

    def deliver(self, hold=()):
        while True:
            busy = False
            for i, rn in self.n.items():
                if not rn.has_ready():
                    continue
                busy = True
                rd = rn.ready()
                self.st[i].append(rd.entries)
                if rd.hard_state is not None:
                    self.st[i].set_hard_state(rd.hard_state)
                self.reads[i].extend(rd.read_states)
                rn.advance(rd)
                for m in rd.messages:
                    self.sent.append(m)
                    if m.to not in hold:
                        try:
                            self.n[m.to].step(m)
                        except ProposalDropped:
                            pass
            if not busy:
                return


def test_lease_based_read_needs_no_heartbeat_round():
    from pyetcd.raft import READ_ONLY_LEASE_BASED
    from pyetcd.raft.types import MsgHeartbeat
    net = _Net(check_quorum=True, read_only_option=READ_ONLY_LEASE_BASED)
    net.n[1].campaign()
    net.deliver()
    net.sent.clear()
    net.n[1].read_index(b"lease")
    net.deliver()
    assert [r.request_ctx for r in net.reads[1]] == [b"lease"]
    assert not [m for m in net.sent if m.type == MsgHeartbeat]


def test_uncommitted_size_limit_drops_proposals():
    net = _Net(max_uncommitted_entries_size=1000)
    net.n[1].campaign()
    net.deliver()
    net.n[1].propose(b"x" * 600)
    with pytest.raises(ProposalDropped):
        net.n[1].propose(b"y" * 600)  # 1200 uncommitted bytes would exceed the limit
    net.deliver()
    net.n[1].propose(b"z" * 600)      # committed in between: room again


def test_inflight_window_bounds_pipelining():
    from pyetcd.raft.types import MsgApp
    net = _Net(max_inflight_msgs=2)
    net.n[1].campaign()
    net.deliver()
    net.sent.clear()
    for i in range(5):
        net.n[1].propose(b"p%d" % i)
    # Followers 2 and 3 do not answer yet: at most 2 MsgApp each are in flight.
    rd = net.n[1].ready()
    apps = [m for m in rd.messages if m.type == MsgApp]
    assert len([m for m in apps if m.to == 2]) == 2 and len([m for m in apps if m.to == 3]) == 2
