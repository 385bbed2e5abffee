"""The Raft state machine: term/vote bookkeeping, role transitions, Step dispatch, ticks.

Role-specific message handling lives in leader.py (step_leader and replication) and
follower.py (step_follower, step_candidate, append/heartbeat/snapshot handling).
Everything is driven by step(), tick() and the RawNode; nothing here does I/O.
"""
import random as _random

from . import confchange
from .follower import step_candidate, step_follower
from .leader import (bcast_append, bcast_heartbeat, maybe_send_append, step_leader)
from .log import RaftLog
from .read_only import READ_ONLY_LEASE_BASED, READ_ONLY_SAFE, ReadOnly
from .quorum import VOTE_WON
from .tracker import Progress, ProgressTracker
from .types import (
    MSG_NAMES, NONE, STATE_CANDIDATE, STATE_FOLLOWER, STATE_LEADER, STATE_NAMES,
    STATE_PRE_CANDIDATE, ConfState, Entry, HardState, Message, MsgApp, MsgCheckQuorum,
    MsgHeartbeat, MsgHup, MsgPreVote, MsgPreVoteResp, MsgProp, MsgReadIndex,
    MsgSnap, MsgAppResp, MsgVote, MsgVoteResp, MsgBeat, RaftError, SoftState, ENTRY_NORMAL,
    ENTRY_CONF_CHANGE, ENTRY_CONF_CHANGE_V2, conf_change_enter_joint, conf_change_leave_joint,
    payloads_size, vote_resp_type, ProposalDropped)

CAMPAIGN_PRE_ELECTION = b"CampaignPreElection"
CAMPAIGN_ELECTION = b"CampaignElection"
CAMPAIGN_TRANSFER = b"CampaignTransfer"
NO_LIMIT = None


class NullLogger:
    def debug(self, *a):
        pass
    info = warning = error = debug


class Config:
    """Parameters of one Raft node (etcd's raft.Config).

    election_tick must exceed heartbeat_tick; etcd recommends election = 10 * heartbeat.
    rand: object with randrange(n) (random.Random); inject a seeded one for reproducible runs.
    logger: object with debug/info/warning/error(fmt, *args).
    """

    def __init__(self, id, storage, election_tick=10, heartbeat_tick=1, applied=0,
                 max_size_per_msg=1 << 20, max_committed_size_per_ready=None,
                 max_uncommitted_entries_size=0, max_inflight_msgs=256, check_quorum=False,
                 pre_vote=False, read_only_option=READ_ONLY_SAFE,
                 disable_proposal_forwarding=False, step_down_on_removal=False,
                 logger=None, rand=None):
        self.id = id
        self.storage = storage
        self.election_tick = election_tick
        self.heartbeat_tick = heartbeat_tick
        self.applied = applied
        self.max_size_per_msg = max_size_per_msg
        self.max_committed_size_per_ready = max_committed_size_per_ready
        self.max_uncommitted_entries_size = max_uncommitted_entries_size
        self.max_inflight_msgs = max_inflight_msgs
        self.check_quorum = check_quorum
        self.pre_vote = pre_vote
        self.read_only_option = read_only_option
        self.disable_proposal_forwarding = disable_proposal_forwarding
        self.step_down_on_removal = step_down_on_removal
        self.logger = logger or NullLogger()
        self.rand = rand if rand is not None else _random.Random()

    def validate(self):
        if self.id == NONE:
            raise RaftError("cannot use none as id")
        if self.heartbeat_tick <= 0:
            raise RaftError("heartbeat tick must be greater than 0")
        if self.election_tick <= self.heartbeat_tick:
            raise RaftError("election tick must be greater than heartbeat tick")
        if self.storage is None:
            raise RaftError("storage cannot be nil")
        if self.max_inflight_msgs <= 0:
            raise RaftError("max inflight messages must be greater than 0")
        if self.read_only_option == READ_ONLY_LEASE_BASED and not self.check_quorum:
            raise RaftError("CheckQuorum must be enabled when ReadOnlyOption is ReadOnlyLeaseBased")


class Raft:
    def __init__(self, c):
        c.validate()
        self.id = c.id
        self.logger = c.logger
        self.rand = c.rand
        self.raft_log = RaftLog(c.storage, c.logger, c.max_committed_size_per_ready)
        hs, cs = c.storage.initial_state()
        self.term = 0
        self.vote = NONE
        self.lead = NONE
        self.state = STATE_FOLLOWER
        self.is_learner = False
        self.msgs = []
        self.read_states = []
        self.max_msg_size = c.max_size_per_msg
        self.max_uncommitted_size = c.max_uncommitted_entries_size
        self.uncommitted_size = 0
        self.prs = ProgressTracker(c.max_inflight_msgs)
        self.lead_transferee = NONE
        # Index of the latest conf change in the log; no new one is proposed until it is
        # applied, so at most one change is in flight (Raft thesis 4.1).
        self.pending_conf_index = 0
        self.read_only = ReadOnly(c.read_only_option)
        self.pending_read_index_messages = []
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.check_quorum = c.check_quorum
        self.pre_vote = c.pre_vote
        self.heartbeat_timeout = c.heartbeat_tick
        self.election_timeout = c.election_tick
        self.randomized_election_timeout = 0
        self.disable_proposal_forwarding = c.disable_proposal_forwarding
        self.step_down_on_removal = c.step_down_on_removal
        self._step = step_follower
        self._tick = self.tick_election

        cfg, prs = confchange.restore(confchange.Changer(self.prs, self.raft_log.last_index()), cs)
        self.switch_to_config(cfg, prs)
        if not hs.is_empty():
            self.load_state(hs)
        if c.applied > 0:
            self.raft_log.applied_to(c.applied)
        self.become_follower(self.term, NONE)
        self.logger.info("newRaft %d [peers: [%s], term: %d, commit: %d, applied: %d, "
                         "lastindex: %d, lastterm: %d]", self.id,
                         ",".join(str(i) for i in self.prs.voter_nodes()), self.term,
                         self.raft_log.committed, self.raft_log.applied,
                         self.raft_log.last_index(), self.raft_log.last_term())

    # --- state snapshots --------------------------------------------------------------

    def soft_state(self):
        return SoftState(self.lead, self.state)

    def hard_state(self):
        return HardState(self.term, self.vote, self.raft_log.committed)

    def load_state(self, hs):
        if hs.commit < self.raft_log.committed or hs.commit > self.raft_log.last_index():
            raise RaftError("%d state.commit %d is out of range [%d, %d]" % (
                self.id, hs.commit, self.raft_log.committed, self.raft_log.last_index()))
        self.raft_log.committed = hs.commit
        self.term = hs.term
        self.vote = hs.vote

    # --- sending ----------------------------------------------------------------------

    def send(self, m):
        if m.from_ == NONE:
            m.from_ = self.id
        t = m.type
        if t in (MsgVote, MsgVoteResp, MsgPreVote, MsgPreVoteResp):
            if m.term == 0:
                # Vote messages carry the term they are for (a pre-vote's is our term + 1).
                raise RaftError("term should be set when sending %s" % MSG_NAMES[t])
        else:
            if m.term != 0:
                raise RaftError("term should not be set when sending %s (was %d)" % (
                    MSG_NAMES[t], m.term))
            # Forwarded proposals and read requests keep term 0: they are local to the leader.
            if t != MsgProp and t != MsgReadIndex:
                m.term = self.term
        self.msgs.append(m)

    # --- role transitions ---------------------------------------------------------------

    def reset(self, term):
        if self.term != term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.reset_randomized_election_timeout()
        self.abort_leader_transfer()
        self.prs.reset_votes()
        last = self.raft_log.last_index()
        maxinf = self.prs.max_inflight
        for i, pr in list(self.prs.progress.items()):
            npr = Progress(0, last + 1, maxinf, is_learner=pr.is_learner)
            if i == self.id:
                npr.match = last
            self.prs.progress[i] = npr
        self.pending_conf_index = 0
        self.uncommitted_size = 0
        self.read_only = ReadOnly(self.read_only.option)

    def become_follower(self, term, lead):
        self._step = step_follower
        self.reset(term)
        self._tick = self.tick_election
        self.lead = lead
        self.state = STATE_FOLLOWER
        self.logger.info("%d became follower at term %d", self.id, self.term)

    def become_candidate(self):
        if self.state == STATE_LEADER:
            raise RaftError("invalid transition [leader -> candidate]")
        self._step = step_candidate
        self.reset(self.term + 1)
        self._tick = self.tick_election
        self.vote = self.id
        self.state = STATE_CANDIDATE
        self.logger.info("%d became candidate at term %d", self.id, self.term)

    def become_pre_candidate(self):
        if self.state == STATE_LEADER:
            raise RaftError("invalid transition [leader -> pre-candidate]")
        # Pre-vote (thesis 9.6) changes neither term nor vote: a partitioned node that keeps
        # campaigning does not inflate its term and disrupt the cluster when it returns.
        self._step = step_candidate
        self.prs.reset_votes()
        self._tick = self.tick_election
        self.lead = NONE
        self.state = STATE_PRE_CANDIDATE
        self.logger.info("%d became pre-candidate at term %d", self.id, self.term)

    def become_leader(self):
        if self.state == STATE_FOLLOWER:
            raise RaftError("invalid transition [follower -> leader]")
        self._step = step_leader
        self.reset(self.term)
        self._tick = self.tick_heartbeat
        self.lead = self.id
        self.state = STATE_LEADER
        # The leader's own progress is always up to date and never paused.
        self.prs.progress[self.id].become_replicate()
        # Conservatively treat the whole log as possibly holding an unapplied conf change.
        self.pending_conf_index = self.raft_log.last_index()
        # An empty entry of the new term: committing it commits everything before it
        # (Raft paper 5.4.2), and tells us our commit index is current (thesis 6.4).
        if not self.append_entry([Entry(0, 0, ENTRY_NORMAL, b"")]):
            raise RaftError("empty entry was dropped")
        self.uncommitted_size = 0
        self.logger.info("%d became leader at term %d", self.id, self.term)

    # --- elections ----------------------------------------------------------------------

    def promotable(self):
        pr = self.prs.progress.get(self.id)
        return pr is not None and not pr.is_learner and not self.raft_log.has_pending_snapshot()

    def hup(self, t):
        if self.state == STATE_LEADER:
            self.logger.debug("%d ignoring MsgHup because already leader", self.id)
            return
        if not self.promotable():
            self.logger.warning("%d is unpromotable and can not campaign", self.id)
            return
        rl = self.raft_log
        if rl.committed > rl.applied:
            ents = rl.slice(rl.applied + 1, rl.committed + 1)
            n = sum(1 for e in ents if e.type != ENTRY_NORMAL)
            if n:
                self.logger.warning("%d cannot campaign at term %d since there are still %d "
                                    "pending configuration changes to apply", self.id,
                                    self.term, n)
                return
        self.logger.info("%d is starting a new election at term %d", self.id, self.term)
        self.campaign(t)

    def campaign(self, t):
        if t == CAMPAIGN_PRE_ELECTION:
            self.become_pre_candidate()
            vote_msg = MsgPreVote
            term = self.term + 1  # the term we would campaign for; ours stays unchanged
        else:
            self.become_candidate()
            vote_msg = MsgVote
            term = self.term
        _, _, res = self.poll(self.id, vote_resp_type(vote_msg), True)
        if res == VOTE_WON:
            # Single-voter config: we won by our own vote.
            if t == CAMPAIGN_PRE_ELECTION:
                self.campaign(CAMPAIGN_ELECTION)
            else:
                self.become_leader()
            return
        rl = self.raft_log
        ctx = t if t == CAMPAIGN_TRANSFER else b""
        for i in self.prs.voter_nodes():
            if i == self.id:
                continue
            self.logger.info("%d [logterm: %d, index: %d] sent %s request to %d at term %d",
                             self.id, rl.last_term(), rl.last_index(), MSG_NAMES[vote_msg],
                             i, self.term)
            self.send(Message(type=vote_msg, to=i, term=term, index=rl.last_index(),
                              log_term=rl.last_term(), context=ctx))

    def poll(self, id_, t, v):
        if v:
            self.logger.info("%d received %s from %d at term %d", self.id, MSG_NAMES[t], id_,
                             self.term)
        else:
            self.logger.info("%d received %s rejection from %d at term %d", self.id,
                             MSG_NAMES[t], id_, self.term)
        self.prs.record_vote(id_, v)
        return self.prs.tally_votes()

    # --- the entry point ------------------------------------------------------------------

    def step(self, m):
        """Handle one message. Raises ProposalDropped when a proposal cannot be accepted."""
        if m.term == 0:
            pass  # local message
        elif m.term > self.term:
            if m.type in (MsgVote, MsgPreVote):
                force = m.context == CAMPAIGN_TRANSFER
                in_lease = (self.check_quorum and self.lead != NONE
                            and self.election_elapsed < self.election_timeout)
                if not force and in_lease:
                    # We heard from a live leader within the election timeout: ignore the
                    # vote so a node partitioned away cannot depose it (thesis 4.2.3).
                    self.logger.info(
                        "%d [logterm: %d, index: %d, vote: %d] ignored %s from %d [logterm: %d, "
                        "index: %d] at term %d: lease is not expired (remaining ticks: %d)",
                        self.id, self.raft_log.last_term(), self.raft_log.last_index(),
                        self.vote, MSG_NAMES[m.type], m.from_, m.log_term, m.index, self.term,
                        self.election_timeout - self.election_elapsed)
                    return
            if m.type == MsgPreVote:
                pass  # never change our term in response to a pre-vote
            elif m.type == MsgPreVoteResp and not m.reject:
                # A granted pre-vote carries the future term; we adopt a term only once we
                # win the pre-vote and start the real election.
                pass
            else:
                self.logger.info("%d [term: %d] received a %s message with higher term from %d "
                                 "[term: %d]", self.id, self.term, MSG_NAMES[m.type], m.from_,
                                 m.term)
                if m.type in (MsgApp, MsgHeartbeat, MsgSnap):
                    self.become_follower(m.term, m.from_)
                else:
                    self.become_follower(m.term, NONE)
        elif m.term < self.term:
            if (self.check_quorum or self.pre_vote) and m.type in (MsgHeartbeat, MsgApp):
                # A stale leader (e.g. one that was partitioned) must learn the new term, or
                # with check-quorum/pre-vote it could never be dislodged: tell it.
                self.send(Message(type=MsgAppResp, to=m.from_))
            elif m.type == MsgPreVote:
                self.logger.info(
                    "%d [logterm: %d, index: %d, vote: %d] rejected %s from %d [logterm: %d, "
                    "index: %d] at term %d", self.id, self.raft_log.last_term(),
                    self.raft_log.last_index(), self.vote, MSG_NAMES[m.type], m.from_,
                    m.log_term, m.index, self.term)
                self.send(Message(type=MsgPreVoteResp, to=m.from_, term=self.term, reject=True))
            else:
                self.logger.info("%d [term: %d] ignored a %s message with lower term from %d "
                                 "[term: %d]", self.id, self.term, MSG_NAMES[m.type], m.from_,
                                 m.term)
            return

        t = m.type
        if t == MsgHup:
            self.hup(CAMPAIGN_PRE_ELECTION if self.pre_vote else CAMPAIGN_ELECTION)
        elif t == MsgVote or t == MsgPreVote:
            # We may vote for whom we already voted for, or anyone if we have neither voted
            # nor heard from a leader this term; a pre-vote for a future term is always fine.
            can_vote = (self.vote == m.from_ or (self.vote == NONE and self.lead == NONE)
                        or (t == MsgPreVote and m.term > self.term))
            rl = self.raft_log
            if can_vote and rl.is_up_to_date(m.index, m.log_term):
                self.logger.info(
                    "%d [logterm: %d, index: %d, vote: %d] cast %s for %d [logterm: %d, index: %d] "
                    "at term %d", self.id, rl.last_term(), rl.last_index(), self.vote,
                    MSG_NAMES[t], m.from_, m.log_term, m.index, self.term)
                # The response carries the message's term, not ours: for a pre-vote the
                # candidate matches it against the future term it campaigns for.
                self.send(Message(type=vote_resp_type(t), to=m.from_, term=m.term))
                if t == MsgVote:
                    self.election_elapsed = 0
                    self.vote = m.from_
            else:
                self.logger.info(
                    "%d [logterm: %d, index: %d, vote: %d] rejected %s from %d [logterm: %d, "
                    "index: %d] at term %d", self.id, rl.last_term(), rl.last_index(), self.vote,
                    MSG_NAMES[t], m.from_, m.log_term, m.index, self.term)
                self.send(Message(type=vote_resp_type(t), to=m.from_, term=self.term,
                                  reject=True))
        else:
            self._step(self, m)

    # --- ticks ------------------------------------------------------------------------

    def tick(self):
        self._tick()

    def tick_election(self):
        self.election_elapsed += 1
        if self.promotable() and self.election_elapsed >= self.randomized_election_timeout:
            self.election_elapsed = 0
            self.step(Message(type=MsgHup, from_=self.id))

    def tick_heartbeat(self):
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.election_timeout:
            self.election_elapsed = 0
            if self.check_quorum:
                self.step(Message(type=MsgCheckQuorum, from_=self.id))
            # A transfer that did not finish within an election timeout is abandoned.
            if self.state == STATE_LEADER and self.lead_transferee != NONE:
                self.abort_leader_transfer()
        if self.state != STATE_LEADER:
            return
        if self.heartbeat_elapsed >= self.heartbeat_timeout:
            self.heartbeat_elapsed = 0
            self.step(Message(type=MsgBeat, from_=self.id))

    def reset_randomized_election_timeout(self):
        # Randomized in [election, 2*election) to make split votes unlikely (paper 5.2).
        self.randomized_election_timeout = (self.election_timeout
                                            + self.rand.randrange(self.election_timeout))

    def abort_leader_transfer(self):
        self.lead_transferee = NONE

    # --- log and commit -----------------------------------------------------------------

    def append_entry(self, es):
        rl = self.raft_log
        li = rl.last_index()
        term = self.term
        for i, e in enumerate(es):
            e.term = term
            e.index = li + 1 + i
        if not self.increase_uncommitted_size(es):
            self.logger.warning("%d appending new entries to log would exceed uncommitted entry "
                                "size limit; dropping proposal", self.id)
            return False
        li = rl.append(es)
        self.prs.progress[self.id].maybe_update(li)
        self.maybe_commit()
        return True

    def maybe_commit(self):
        return self.raft_log.maybe_commit(self.prs.committed(), self.term)

    def increase_uncommitted_size(self, ents):
        s = payloads_size(ents)
        if (self.uncommitted_size > 0 and s > 0 and self.max_uncommitted_size
                and self.uncommitted_size + s > self.max_uncommitted_size):
            # Always admit one proposal, however large, when nothing is uncommitted.
            return False
        self.uncommitted_size += s
        return True

    def reduce_uncommitted_size(self, ents):
        if self.uncommitted_size == 0:
            return
        s = payloads_size(ents)
        self.uncommitted_size = max(0, self.uncommitted_size - s)

    def committed_entry_in_current_term(self):
        return self.raft_log.term_or_zero(self.raft_log.committed) == self.term

    # --- configuration ----------------------------------------------------------------

    def apply_conf_change(self, cc2):
        changer = confchange.Changer(self.prs, self.raft_log.last_index())
        if conf_change_leave_joint(cc2):
            cfg, prs = changer.leave_joint()
        else:
            auto_leave, ok = conf_change_enter_joint(cc2)
            if ok:
                cfg, prs = changer.enter_joint(auto_leave, confchange.changes_of(cc2))
            else:
                cfg, prs = changer.simple(confchange.changes_of(cc2))
        return self.switch_to_config(cfg, prs)

    def switch_to_config(self, cfg, prs):
        self.prs.config = cfg
        self.prs.progress = prs
        self.logger.info("%d switched to configuration %r", self.id, cfg)
        cs = self.prs.conf_state()
        pr = prs.get(self.id)
        self.is_learner = pr is not None and pr.is_learner
        if (pr is None or self.is_learner) and self.state == STATE_LEADER:
            # We were removed or demoted. We keep leading until the change commits elsewhere
            # unless step_down_on_removal asks us to step down at once.
            if self.step_down_on_removal:
                self.become_follower(self.term, NONE)
            return cs
        if self.state != STATE_LEADER or not cs.voters:
            return cs
        # The quorum changed: the commit index may move, and new peers need the log.
        if self.maybe_commit():
            bcast_append(self)
        else:
            for i in self.prs.visit_ids():
                if i != self.id:
                    maybe_send_append(self, i, False)
        if self.lead_transferee != NONE and self.lead_transferee not in self.prs.config.voters.ids():
            self.abort_leader_transfer()
        return cs

    def restore(self, snap):
        """Install a snapshot from the leader. Returns False if it was ignored."""
        md = snap.metadata
        rl = self.raft_log
        if md.index <= rl.committed:
            return False
        if self.state != STATE_FOLLOWER:
            # Defensive, as etcd: a leader never installs a snapshot; force a new term.
            self.logger.warning("%d attempted to restore snapshot as leader; should never happen",
                                self.id)
            self.become_follower(self.term + 1, NONE)
            return False
        cs = md.conf_state
        if self.id not in cs.voters and self.id not in cs.learners and \
                self.id not in cs.voters_outgoing:
            self.logger.warning("%d attempted to restore snapshot but it is not in the ConfState "
                                "%r; should never happen", self.id, cs)
            return False
        if rl.match_term(md.index, md.term):
            # We already have the snapshot's last entry: just fast-forward the commit index.
            self.logger.info("%d [commit: %d, lastindex: %d, lastterm: %d] fast-forwarded commit "
                             "to snapshot [index: %d, term: %d]", self.id, rl.committed,
                             rl.last_index(), rl.last_term(), md.index, md.term)
            rl.commit_to(md.index)
            return False
        rl.restore(snap)
        self.prs = ProgressTracker(self.prs.max_inflight)
        cfg, prs = confchange.restore(confchange.Changer(self.prs, rl.last_index()), cs)
        got = self.switch_to_config(cfg, prs)
        if got != cs:
            raise RaftError("conf state mismatch after snapshot restore: %r != %r" % (got, cs))
        pr = self.prs.progress[self.id]
        pr.maybe_update(pr.next - 1)
        self.logger.info("%d [commit: %d, lastindex: %d, lastterm: %d] restored snapshot "
                         "[index: %d, term: %d]", self.id, rl.committed, rl.last_index(),
                         rl.last_term(), md.index, md.term)
        return True

    def advance_applied(self, new_applied):
        """The application applied through new_applied (called from RawNode.advance)."""
        old = self.raft_log.applied
        self.raft_log.applied_to(new_applied)
        if (self.prs.config.auto_leave and old <= self.pending_conf_index <= new_applied
                and self.state == STATE_LEADER):
            # The joint config's entry is applied: propose the empty ConfChangeV2 that leaves
            # it (etcd's auto-leave). pending_conf_index <= applied, so it is accepted.
            self.logger.info("%d initiating automatic transition out of joint configuration %r",
                             self.id, self.prs.config)
            try:
                self.step(Message(type=MsgProp, from_=self.id,
                                  entries=[Entry(0, 0, ENTRY_CONF_CHANGE_V2, b"")]))
            except ProposalDropped:
                self.logger.warning("%d could not propose leaving the joint config", self.id)


__all__ = ["Raft", "Config", "NullLogger", "ConfState", "STATE_NAMES", "bcast_heartbeat",
           "ENTRY_CONF_CHANGE", "CAMPAIGN_TRANSFER"]
