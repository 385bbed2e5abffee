"""Randomized simulation of a Raft cluster on a faulty simulated network.

Everything is driven by one seeded random.Random, so a run is reproducible from its seed.
Faults: message drops, delays (hence reordering), duplicates, partitions, and crashes.
Also: log compaction and snapshots, leadership transfers, and membership changes (add a
learner, promote, demote, remove, joint changes with auto or explicit leave).
A crash loses exactly what the persistence contract allows: the raft node's memory,
including unstable entries not yet handed out in a Ready, and a Ready taken but not yet
persisted. Storage (entries, hard state, snapshot) and the applied state survive.

Invariants checked while running and at the end:
  - state machine safety: no two nodes apply different entries at the same index;
  - election safety: at most one leader per term;
  - durability: after healing, every member applies every entry ever applied anywhere;
  - liveness after healing: a leader emerges and commits one more entry on every member.
"""
import heapq
import pickle
import random

from pyetcd.raft import Config, MemoryStorage, RaftError, RawNode
from pyetcd.raft.storage import Snapshot, SnapshotMetadata
from pyetcd.pb import raftpb
from pyetcd.raft.types import (ConfState, ENTRY_NORMAL, Entry, Message, MsgSnap, STATE_LEADER,
                               decode_conf_change)


class SimFailure(AssertionError):
    pass


def copy_message(m, via_pb):
    """What the wire does: the receiver gets its own objects, never the sender's."""
    if via_pb:
        return Message.from_pb(m.to_pb())
    return Message(m.type, m.to, m.from_, m.term, m.log_term, m.index,
                   [Entry(e.term, e.index, e.type, e.data) for e in m.entries], m.commit,
                   m.snapshot, m.reject, m.reject_hint, m.context)


def _members(cs):
    return set(cs.voters) | set(cs.learners) | set(cs.voters_outgoing) | set(cs.learners_next)


class SimNode:
    def __init__(self, sim, id_, voters):
        self.sim = sim
        self.id = id_
        self.storage = MemoryStorage()
        self.applied = {}          # index -> data: the durable state machine
        self.applied_index = 0
        if voters:
            self.storage.apply_snapshot(Snapshot(pickle.dumps({}), SnapshotMetadata(
                ConfState(voters), 1, 1)))
            self.applied_index = 1
        # else: a node added later starts empty and is caught up by the leader
        self.up = True
        self.start()

    def start(self):
        s = self.sim
        c = Config(self.id, self.storage, election_tick=10, heartbeat_tick=1,
                   applied=self.applied_index, pre_vote=s.pre_vote, check_quorum=s.check_quorum,
                   max_inflight_msgs=s.rng.choice([1, 4, 256]),
                   max_size_per_msg=s.rng.choice([1, 200, 1 << 20]),
                   step_down_on_removal=s.step_down_on_removal,
                   rand=random.Random(s.rng.random()))
        self.rn = RawNode(c)

    def crash(self):
        self.rn = None
        self.up = False

    def restart(self):
        self.up = True
        self.start()

    def handle_ready(self):
        s = self.sim
        rn = self.rn
        if not rn.has_ready():
            return
        rd = rn.ready()
        if s.rng.random() < s.p_crash_mid_ready:
            # Crash before anything of this Ready was persisted: all of it is lost.
            s.crash(self)
            return
        st = self.storage
        removed = False
        if rd.snapshot is not None:
            st.apply_snapshot(rd.snapshot)
            self.applied = pickle.loads(rd.snapshot.data)
            self.applied_index = rd.snapshot.metadata.index
        st.append(rd.entries)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)
        if rd.soft_state is not None and rd.soft_state.raft_state == STATE_LEADER:
            s.record_leader(rn.raft.term, self.id)
        for m in rd.messages:
            s.send(m)
        for e in rd.committed_entries:
            if e.index <= self.applied_index:
                continue
            if e.index != self.applied_index + 1:
                raise SimFailure("node %d applies %d after %d" % (self.id, e.index,
                                                                   self.applied_index))
            s.check_apply(self.id, e)
            if e.type == ENTRY_NORMAL and e.data:
                self.applied[e.index] = e.data
            self.applied_index = e.index
            if e.type != ENTRY_NORMAL:
                before = _members(rn.raft.prs.conf_state())
                cs = rn.apply_conf_change(decode_conf_change(e))
                for gone in before - _members(cs):
                    if gone == self.id:
                        removed = True
                    else:
                        s.member_removed(gone)
                # Record the membership in a snapshot, as etcd's server does, so a node
                # caught up by snapshot learns a configuration that contains it.
                if e.index > st.snap.metadata.index:
                    st.create_snapshot(e.index, cs, pickle.dumps(self.applied))
        rn.advance(rd)
        if removed:
            s.member_removed(self.id)
            return
        # Occasionally snapshot the applied state and compact the log, as etcd does every
        # --snapshot-count entries.
        if (self.applied_index - st.snap.metadata.index > s.compact_every
                and s.rng.random() < 0.5):
            st.create_snapshot(self.applied_index, rn.raft.prs.conf_state(),
                               pickle.dumps(self.applied))
            st.compact(self.applied_index - s.rng.randrange(3))


class Sim:
    def __init__(self, seed, steps=400):
        self.seed = seed
        rng = self.rng = random.Random(seed)
        self.steps = steps
        n = rng.choice([3, 3, 5])
        self.pre_vote = rng.random() < 0.7
        self.check_quorum = rng.random() < 0.7
        self.p_drop = rng.choice([0.0, 0.02, 0.1])
        self.p_dup = rng.choice([0.0, 0.02])
        self.max_delay = rng.choice([0, 2, 5])
        self.p_crash = rng.choice([0.0, 0.003, 0.01])
        self.p_crash_mid_ready = self.p_crash / 4
        self.p_partition = rng.choice([0.0, 0.01, 0.03])
        self.compact_every = rng.choice([5, 20, 1000])
        self.p_propose = rng.choice([0.1, 0.3, 0.6])
        voters = list(range(1, n + 1))
        self.now = 0
        self.net = []             # (deliver_at, seq, msg)
        self.seq = 0
        self.partition = None     # set of ids cut off from the rest
        self.leaders = {}         # term -> id
        self.committed = {}       # index -> (term, type, data) first applied anywhere
        self.proposed = 0
        self.snap_reports = []
        self.p_conf_change = rng.choice([0.0, 0.0, 0.01, 0.03])
        self.p_transfer = rng.choice([0.0, 0.005])
        self.step_down_on_removal = rng.random() < 0.5
        self.removed = set()      # ids whose member was stopped after its removal
        self.nodes = {i: SimNode(self, i, voters) for i in voters}
        # Spare ids that membership changes may add (they exist, empty, from the start).
        for i in range(n + 1, n + 3):
            self.nodes[i] = SimNode(self, i, [])

    # --- invariants ---------------------------------------------------------------------

    def record_leader(self, term, id_):
        prev = self.leaders.setdefault(term, id_)
        if prev != id_:
            raise SimFailure("two leaders in term %d: %d and %d" % (term, prev, id_))

    def check_apply(self, id_, e):
        v = (e.term, e.type, e.data)
        prev = self.committed.setdefault(e.index, v)
        if prev != v:
            raise SimFailure("node %d applied %r at index %d, another node applied %r" % (
                id_, v, e.index, prev))

    # --- network --------------------------------------------------------------------------

    def cut(self, a, b):
        p = self.partition
        return p is not None and ((a in p) != (b in p))

    def send(self, m):
        rng = self.rng
        if rng.random() < self.p_drop:
            if m.type == MsgSnap:
                self.snap_reports.append((m.from_, m.to, True))
            return
        if m.type == MsgSnap:
            # The transport reports the outcome of a snapshot send (etcd's ReportSnapshot);
            # without it the leader would wait in StateSnapshot for an ack that may be lost.
            self.snap_reports.append((m.from_, m.to, False))
        copies = 2 if rng.random() < self.p_dup else 1
        for _ in range(copies):
            self.seq += 1
            heapq.heappush(self.net, (self.now + rng.randint(0, self.max_delay), self.seq, m))

    def member_removed(self, id_):
        """Some member applied the removal of id_. As in etcd, the cluster records removed
        ids: peers' transports reject their messages and the removed member stops itself.
        (A removed node that kept running with its stale config would otherwise keep
        campaigning and disrupt the cluster, Raft thesis 4.2.3.)"""
        if id_ in self.removed:
            return
        self.removed.add(id_)
        node = self.nodes[id_]
        if node.up:
            self.crash(node)

    def crash(self, node):
        node.crash()
        self.net = [x for x in self.net if x[2].to != node.id]
        heapq.heapify(self.net)

    def deliver_due(self, heal_all=False):
        net = self.net
        due = []
        while net and net[0][0] <= self.now:
            due.append(heapq.heappop(net))
        for _, _, m in due:
            node = self.nodes.get(m.to)
            if node is None or not node.up:
                continue
            if not heal_all and self.cut(m.from_, m.to):
                continue
            if m.from_ in self.removed:
                continue
            try:
                node.rn.step(copy_message(m, self.rng.random() < 0.1))
            except RaftError:
                pass

    # --- the run ------------------------------------------------------------------------

    def step(self, faults=True):
        rng = self.rng
        self.now += 1
        if faults:
            if rng.random() < self.p_partition:
                ids = list(self.nodes)
                k = rng.randint(1, len(ids) // 2)
                self.partition = set(rng.sample(ids, k))
            elif self.partition is not None and rng.random() < 0.05:
                self.partition = None
            for node in self.nodes.values():
                if node.up and rng.random() < self.p_crash:
                    self.crash(node)
                elif not node.up and node.id not in self.removed and rng.random() < 0.1:
                    node.restart()
            if rng.random() < self.p_conf_change:
                self.maybe_change_membership()
            if rng.random() < self.p_transfer:
                lead = self.leader()
                if lead is not None:
                    lead.rn.transfer_leader(rng.choice(list(self.nodes)))
            if rng.random() < self.p_propose:
                node = self.nodes[rng.choice(list(self.nodes))]
                if node.up:
                    self.proposed += 1
                    try:
                        node.rn.propose(b"p%d" % self.proposed)
                    except RaftError:
                        pass
        reports, self.snap_reports = self.snap_reports, []
        for frm, to, failed in reports:
            node = self.nodes[frm]
            if node.up:
                node.rn.report_snapshot(to, failed)
        for node in self.nodes.values():
            if node.up:
                node.rn.tick()
        self.deliver_due(heal_all=not faults)
        for node in list(self.nodes.values()):
            if node.up:
                node.handle_ready()
                if node.up and node.rn.raft.state == STATE_LEADER:
                    self.record_leader(node.rn.raft.term, node.id)

    def leader(self):
        best = None
        for n in self.nodes.values():
            if n.up and n.rn.raft.state == STATE_LEADER:
                if best is None or n.rn.raft.term > best.rn.raft.term:
                    best = n
        return best

    def maybe_change_membership(self):
        """Propose a random valid change on the leader: add a learner, promote, demote,
        remove, or a joint change of several at once."""
        lead = self.leader()
        if lead is None:
            return
        rng = self.rng
        cfg = lead.rn.raft.prs.config
        if cfg.voters.is_joint():
            if not cfg.auto_leave:
                lead.rn.propose_conf_change(raftpb.ConfChangeV2())
            return
        voters = sorted(cfg.voters.incoming)
        learners = sorted(cfg.learners)
        # As in etcd, a removed member's id is never reused.
        others = [i for i in self.nodes
                  if i not in voters and i not in learners and i not in self.removed]
        ops = []
        if others:
            ops.append((3, rng.choice(others)))          # add learner
        if learners:
            ops.append((0, rng.choice(learners)))        # promote
        if len(voters) > 2:
            ops.append((1, rng.choice(voters)))          # remove
            ops.append((3, rng.choice(voters)))          # demote
        if not ops:
            return
        if rng.random() < 0.3 and len(ops) > 1:
            picked = rng.sample(ops, 2)
            if picked[0][1] == picked[1][1]:
                picked = picked[:1]
            tr = rng.choice([0, 1, 2])
        else:
            picked, tr = [rng.choice(ops)], 0
        # Keep at least two voters afterwards so the cluster stays able to elect.
        after = set(voters)
        for t, i in picked:
            if t == 0:
                after.add(i)
            elif t in (1, 3):
                after.discard(i)
        if len(after) < 2:
            return
        cc = raftpb.ConfChangeV2(transition=tr, changes=[
            raftpb.ConfChangeSingle(type=t, node_id=i) for t, i in picked])
        try:
            lead.rn.propose_conf_change(cc)
        except RaftError:
            pass

    def members(self):
        lead = self.leader()
        if lead is None:
            return list(self.nodes.values())
        cfg = lead.rn.raft.prs.config
        ids = cfg.voters.ids() | cfg.learners | cfg.learners_next
        return [self.nodes[i] for i in sorted(ids)]

    def run(self):
        for _ in range(self.steps):
            self.step()
        # Heal everything and let the cluster converge.
        self.partition = None
        self.p_drop = self.p_dup = 0.0
        self.p_crash_mid_ready = 0.0
        for node in self.nodes.values():
            if not node.up and node.id not in self.removed:
                node.restart()
        target = max(self.committed) if self.committed else 0
        # Liveness after healing: a leader emerges and commits one more entry everywhere.
        final = b"final-%d" % self.seed
        for k in range(3000):
            self.step(faults=False)
            lead = self.leader()
            if lead is None:
                continue
            done = [n for n in self.members() if final in n.applied.values()]
            if len(done) == len(self.members()) and not self.net:
                break
            if k % 100 == 0 and not any(v[2] == final for v in self.committed.values()):
                try:
                    lead.rn.propose(final)
                except RaftError:
                    pass
        self.check_final(target)

    def check_final(self, target):
        if self.leader() is None:
            raise SimFailure("no leader after healing")
        members = self.members()
        final = b"final-%d" % self.seed
        for n in members:
            if final not in n.applied.values():
                raise SimFailure("node %d did not apply the final entry after healing" % n.id)
            if n.applied_index < target:
                raise SimFailure("node %d applied only %d of %d after healing" % (
                    n.id, n.applied_index, target))
        for idx, (_, typ, data) in self.committed.items():
            if typ != ENTRY_NORMAL or not data:
                continue
            for n in members:
                if n.applied.get(idx) != data:
                    raise SimFailure("committed entry %d (%r) lost on node %d" % (idx, data, n.id))


def run_seed(seed, steps=400):
    sim = Sim(seed, steps)
    try:
        sim.run()
    except Exception as e:
        raise SimFailure("seed %d failed: %s: %s" % (seed, type(e).__name__, e)) from e
    return sim
