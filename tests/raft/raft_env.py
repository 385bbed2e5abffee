"""Interaction-test environment: in-process RawNodes, a message queue, text output.

Commands (see tests/raft/testdata/*.txt):
  add-nodes N [voters=(..)] [learners=(..)] [index=I] [prevote=true] [checkquorum=true]
            [max-inflight=N] [max-msg-size=N] [disable-proposal-forwarding=true]
            [read-only=lease] [step-down-on-removal=true] [election=N] [heartbeat=N]
  campaign ID | propose ID DATA | propose-conf-change ID [v1=true] [transition=...]
              (input line: changes such as "v2 l3 r4")
  stabilize [IDS...] | process-ready IDS... | deliver-msgs [drop=(ids)] [IDS...]
  tick-heartbeat ID | tick-election ID | transfer-leadership from=ID to=ID
  read-index ID CTX | compact ID INDEX | isolate ID | heal | report-unreachable ID TO
  raft-log ID | raft-state | status ID | log-level debug|info|warn|none
"""
import random

from pyetcd.pb import raftpb
from pyetcd.raft import Config, MemoryStorage, RawNode, RaftError
from pyetcd.raft.describe import describe_entry, describe_message, describe_ready
from pyetcd.raft.read_only import READ_ONLY_LEASE_BASED, READ_ONLY_SAFE
from pyetcd.raft.storage import Snapshot, SnapshotMetadata
from pyetcd.raft.tracker import PROGRESS_STATE_NAMES
from pyetcd.raft.types import (CC_ADD_LEARNER_NODE, CC_ADD_NODE, CC_REMOVE_NODE,
                               CC_TRANSITION_AUTO, CC_TRANSITION_JOINT_EXPLICIT,
                               CC_TRANSITION_JOINT_IMPLICIT, CC_UPDATE_NODE, ConfState,
                               ENTRY_CONF_CHANGE, ENTRY_CONF_CHANGE_V2, STATE_LEADER,
                               STATE_NAMES, decode_conf_change, Message)

LEVELS = {"debug": 0, "info": 1, "warn": 2, "error": 3, "none": 9}


class TextLogger:
    def __init__(self, env):
        self.env = env

    def _log(self, level, name, fmt, args):
        if level >= self.env.level:
            self.env.out.append("%s %s" % (name, fmt % args if args else fmt))

    def debug(self, fmt, *a):
        self._log(0, "DEBUG", fmt, a)

    def info(self, fmt, *a):
        self._log(1, "INFO", fmt, a)

    def warning(self, fmt, *a):
        self._log(2, "WARN", fmt, a)

    def error(self, fmt, *a):
        self._log(3, "ERROR", fmt, a)


class Node:
    def __init__(self, id_, rn, storage, config):
        self.id = id_
        self.rn = rn
        self.storage = storage
        self.config = config


class Env:
    def __init__(self):
        self.nodes = {}
        self.msgs = []      # in flight, in send order
        self.out = []
        self.level = LEVELS["info"]
        self.isolated = set()

    # --- helpers ------------------------------------------------------------------------

    def _ids(self, cmd):
        return [int(x) for x in cmd.pos] if cmd.pos else sorted(self.nodes)

    def _queue(self, msgs):
        for m in msgs:
            if m.from_ in self.isolated or m.to in self.isolated:
                self.out.append("  dropped (isolated): " + describe_message(m))
                continue
            self.msgs.append(m)

    def handle(self, cmd):
        self.out = []
        fn = getattr(self, "cmd_" + cmd.name.replace("-", "_"), None)
        if fn is None:
            raise ValueError("unknown command %r at line %d" % (cmd.name, cmd.line_no))
        try:
            fn(cmd)
        except RaftError as e:
            self.out.append("error: %s" % (type(e).__name__ + (": %s" % e if str(e) else "")))
        if self.level >= LEVELS["none"]:
            # Quiet mode prints only errors (used to set up state without noise).
            self.out = [ln for ln in self.out if ln.lstrip().startswith("error")]
        return "\n".join(self.out)

    # --- commands -----------------------------------------------------------------------

    def cmd_log_level(self, cmd):
        self.level = LEVELS[cmd.pos[0]]

    def cmd_add_nodes(self, cmd):
        n = int(cmd.pos[0])
        voters = cmd.int_list("voters")
        learners = cmd.int_list("learners")
        index = cmd.get_int("index", 0)
        for _ in range(n):
            id_ = len(self.nodes) + 1
            s = MemoryStorage()
            if index:
                s.apply_snapshot(Snapshot(b"", SnapshotMetadata(ConfState(voters, learners),
                                                                index, 1)))
            else:
                s.snap.metadata.conf_state = ConfState(voters, learners)
            c = Config(id_, s, election_tick=cmd.get_int("election", 10),
                       heartbeat_tick=cmd.get_int("heartbeat", 1),
                       pre_vote=cmd.get_bool("prevote"), check_quorum=cmd.get_bool("checkquorum"),
                       max_inflight_msgs=cmd.get_int("max-inflight", 256),
                       max_size_per_msg=cmd.get_int("max-msg-size", 1 << 20),
                       disable_proposal_forwarding=cmd.get_bool("disable-proposal-forwarding"),
                       step_down_on_removal=cmd.get_bool("step-down-on-removal"),
                       read_only_option=(READ_ONLY_LEASE_BASED if cmd.get("read-only") == "lease"
                                         else READ_ONLY_SAFE),
                       logger=TextLogger(self), rand=random.Random(id_))
            self.nodes[id_] = Node(id_, RawNode(c), s, c)

    def cmd_campaign(self, cmd):
        self.nodes[int(cmd.pos[0])].rn.campaign()

    def cmd_propose(self, cmd):
        self.nodes[int(cmd.pos[0])].rn.propose(cmd.pos[1].encode())

    def cmd_propose_conf_change(self, cmd):
        letters = {"v": CC_ADD_NODE, "l": CC_ADD_LEARNER_NODE, "r": CC_REMOVE_NODE,
                   "u": CC_UPDATE_NODE}
        changes = []
        for line in cmd.input:
            for tok in line.split():
                changes.append((letters[tok[0]], int(tok[1:])))
        node = self.nodes[int(cmd.pos[0])]
        if cmd.get_bool("v1"):
            t, nid = changes[0]
            cc = raftpb.ConfChange(type=t, node_id=nid)
        else:
            tr = {"auto": CC_TRANSITION_AUTO, "implicit": CC_TRANSITION_JOINT_IMPLICIT,
                  "explicit": CC_TRANSITION_JOINT_EXPLICIT}[cmd.get("transition", "auto")]
            cc = raftpb.ConfChangeV2(transition=tr, changes=[
                raftpb.ConfChangeSingle(type=t, node_id=i) for t, i in changes])
        node.rn.propose_conf_change(cc)

    def cmd_tick_heartbeat(self, cmd):
        for i in self._ids(cmd):
            n = self.nodes[i]
            for _ in range(n.config.heartbeat_tick):
                n.rn.tick()

    def cmd_tick_election(self, cmd):
        for i in self._ids(cmd):
            n = self.nodes[i]
            # Enough ticks to pass any randomized timeout in [election, 2*election).
            for _ in range(2 * n.config.election_tick):
                n.rn.tick()

    def cmd_transfer_leadership(self, cmd):
        self.nodes[cmd.get_int("from")].rn.transfer_leader(cmd.get_int("to"))

    def cmd_read_index(self, cmd):
        self.nodes[int(cmd.pos[0])].rn.read_index(cmd.pos[1].encode())

    def cmd_report_unreachable(self, cmd):
        self.nodes[int(cmd.pos[0])].rn.report_unreachable(int(cmd.pos[1]))

    def cmd_compact(self, cmd):
        """Snapshot node's applied state at INDEX and drop the log before it."""
        n = self.nodes[int(cmd.pos[0])]
        idx = int(cmd.pos[1])
        n.storage.create_snapshot(idx, n.rn.raft.prs.conf_state(), b"")
        n.storage.compact(idx)
        self._print_log(n)

    def cmd_restart(self, cmd):
        """Crash and restart: volatile state and unsent messages are lost, storage stays."""
        i = int(cmd.pos[0])
        n = self.nodes[i]
        self.msgs = [m for m in self.msgs if m.to != i]
        old = n.config
        c = Config(i, n.storage, election_tick=old.election_tick,
                   heartbeat_tick=old.heartbeat_tick, applied=n.rn.raft.raft_log.applied,
                   pre_vote=old.pre_vote, check_quorum=old.check_quorum,
                   max_inflight_msgs=old.max_inflight_msgs, max_size_per_msg=old.max_size_per_msg,
                   disable_proposal_forwarding=old.disable_proposal_forwarding,
                   step_down_on_removal=old.step_down_on_removal,
                   read_only_option=old.read_only_option, logger=old.logger, rand=old.rand)
        self.nodes[i] = Node(i, RawNode(c), n.storage, c)

    def cmd_isolate(self, cmd):
        self.isolated.add(int(cmd.pos[0]))

    def cmd_heal(self, cmd):
        self.isolated = set()

    def cmd_process_ready(self, cmd):
        for i in self._ids(cmd):
            self._process_ready(i, prefix=len(self._ids(cmd)) > 1)

    def cmd_deliver_msgs(self, cmd):
        drop = set(cmd.int_list("drop"))
        for i in self._ids(cmd):
            self._deliver(i, drop)

    def cmd_stabilize(self, cmd):
        ids = self._ids(cmd)
        while True:
            done = True
            for i in ids:
                if self.nodes[i].rn.has_ready():
                    self._process_ready(i, prefix=True)
                    done = False
            for i in ids:
                if any(m.to == i for m in self.msgs):
                    self._deliver(i, set())
                    done = False
            if done:
                return

    def cmd_raft_log(self, cmd):
        self._print_log(self.nodes[int(cmd.pos[0])])

    def cmd_raft_state(self, cmd):
        for i in sorted(self.nodes):
            r = self.nodes[i].rn.raft
            role = "Learner" if r.is_learner else (
                "Voter" if i in r.prs.config.voters.ids() else "Non-Voter")
            self.out.append("%d: %s (%s) Term:%d Lead:%d" % (i, STATE_NAMES[r.state], role,
                                                              r.term, r.lead))

    def cmd_status(self, cmd):
        r = self.nodes[int(cmd.pos[0])].rn.raft
        if r.state != STATE_LEADER:
            self.out.append("%d is not leader" % r.id)
            return
        self.out.append("commit:%d config:%r" % (r.raft_log.committed, r.prs.config))
        for i in sorted(r.prs.progress):
            pr = r.prs.progress[i]
            self.out.append("%d: %r" % (i, pr))

    # --- the Ready cycle and delivery ------------------------------------------------------

    def _print_log(self, n):
        s = n.storage
        ents = s.ents[1:]
        if not ents:
            self.out.append("log is empty: first index=%d, last index=%d" % (
                s.first_index(), s.last_index()))
        for e in ents:
            self.out.append(describe_entry(e))

    def _process_ready(self, i, prefix):
        n = self.nodes[i]
        rd = n.rn.ready()
        if prefix:
            self.out.append("> %d handling Ready" % i)
        self.out.append("\n".join(("  " if prefix else "") + ln
                                  for ln in describe_ready(rd).split("\n")))
        # Persist first (the contract), then send, then apply, then advance.
        if rd.snapshot is not None:
            n.storage.apply_snapshot(rd.snapshot)
        n.storage.append(rd.entries)
        if rd.hard_state is not None:
            n.storage.set_hard_state(rd.hard_state)
        self._queue(rd.messages)
        for e in rd.committed_entries:
            if e.type in (ENTRY_CONF_CHANGE, ENTRY_CONF_CHANGE_V2):
                cs = n.rn.apply_conf_change(decode_conf_change(e))
                n.storage.snap.metadata.conf_state = cs  # what a snapshot would record
                self.out.append("  INFO %d applied conf change: %r" % (i, cs)
                                if self.level <= 1 else "")
                if self.out[-1] == "":
                    self.out.pop()
        n.rn.advance(rd)

    def _deliver(self, i, drop):
        mine = [m for m in self.msgs if m.to == i]
        if not mine:
            return
        self.msgs = [m for m in self.msgs if m.to != i]
        if i in drop:
            for m in mine:
                self.out.append("dropped: " + describe_message(m))
            return
        self.out.append("> %d receiving messages" % i)
        for m in mine:
            self.out.append("  " + describe_message(m))
            try:
                self.nodes[i].rn.step(m)
            except RaftError as e:
                self.out.append("  error: %s" % type(e).__name__)


def fresh_message(m):
    return Message(m.type, m.to, m.from_, m.term, m.log_term, m.index, list(m.entries),
                   m.commit, m.snapshot, m.reject, m.reject_hint, m.context)


__all__ = ["Env", "PROGRESS_STATE_NAMES"]
