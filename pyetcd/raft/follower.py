"""Follower and (pre-)candidate roles: step functions and the follower's handling of
MsgApp, MsgHeartbeat and MsgSnap."""
from .quorum import VOTE_LOST, VOTE_WON
from .types import (
    MSG_NAMES, NONE, STATE_PRE_CANDIDATE, Message, MsgApp, MsgAppResp, MsgHeartbeat,
    MsgHeartbeatResp, MsgPreVoteResp, MsgProp, MsgReadIndex, MsgReadIndexResp, MsgSnap,
    MsgTimeoutNow, MsgTransferLeader, MsgVoteResp, ProposalDropped, ReadState)


def handle_append_entries(r, m):
    rl = r.raft_log
    if m.index < rl.committed:
        # Everything up to our commit index is known to match: tell the leader so.
        r.send(Message(type=MsgAppResp, to=m.from_, index=rl.committed))
        return
    last = rl.maybe_append(m.index, m.log_term, m.commit, m.entries)
    if last is not None:
        r.send(Message(type=MsgAppResp, to=m.from_, index=last))
        return
    r.logger.debug("%d [logterm: %d, index: %d] rejected MsgApp [logterm: %d, index: %d] from %d",
                   r.id, rl.term_or_zero(m.index), m.index, m.log_term, m.index, m.from_)
    # Hint the leader at the last index whose term is <= the leader's term at m.index: the
    # leader can skip every entry between (etcd's fast backtracking).
    hint = min(m.index, rl.last_index())
    hint = rl.find_conflict_by_term(hint, m.log_term)
    r.send(Message(type=MsgAppResp, to=m.from_, index=m.index, reject=True, reject_hint=hint,
                   log_term=rl.term_or_zero(hint)))


def handle_heartbeat(r, m):
    r.raft_log.commit_to(m.commit)
    r.send(Message(type=MsgHeartbeatResp, to=m.from_, context=m.context))


def handle_snapshot(r, m):
    md = m.snapshot.metadata
    rl = r.raft_log
    if r.restore(m.snapshot):
        r.send(Message(type=MsgAppResp, to=m.from_, index=rl.last_index()))
    else:
        r.logger.info("%d [commit: %d] ignored snapshot [index: %d, term: %d]", r.id,
                      rl.committed, md.index, md.term)
        r.send(Message(type=MsgAppResp, to=m.from_, index=rl.committed))


def step_follower(r, m):
    t = m.type
    if t == MsgProp:
        if r.lead == NONE:
            r.logger.info("%d no leader at term %d; dropping proposal", r.id, r.term)
            raise ProposalDropped()
        if r.disable_proposal_forwarding:
            r.logger.info("%d not forwarding to leader %d at term %d; dropping proposal", r.id,
                          r.lead, r.term)
            raise ProposalDropped()
        m.to = r.lead
        r.send(m)
    elif t == MsgApp:
        r.election_elapsed = 0
        r.lead = m.from_
        handle_append_entries(r, m)
    elif t == MsgHeartbeat:
        r.election_elapsed = 0
        r.lead = m.from_
        handle_heartbeat(r, m)
    elif t == MsgSnap:
        r.election_elapsed = 0
        r.lead = m.from_
        handle_snapshot(r, m)
    elif t == MsgTransferLeader:
        if r.lead == NONE:
            r.logger.info("%d no leader at term %d; dropping leader transfer msg", r.id, r.term)
            return
        m.to = r.lead
        r.send(m)
    elif t == MsgTimeoutNow:
        r.logger.info("%d [term %d] received MsgTimeoutNow from %d and starts an election to get "
                      "leadership.", r.id, r.term, m.from_)
        # Leadership transfer skips pre-vote: the leader asked for this election.
        from .raft import CAMPAIGN_TRANSFER
        r.hup(CAMPAIGN_TRANSFER)
    elif t == MsgReadIndex:
        if r.lead == NONE:
            r.logger.info("%d no leader at term %d; dropping index reading msg", r.id, r.term)
            return
        m.to = r.lead
        r.send(m)
    elif t == MsgReadIndexResp:
        if len(m.entries) != 1:
            r.logger.error("%d invalid format of MsgReadIndexResp from %d, entries count: %d",
                           r.id, m.from_, len(m.entries))
            return
        r.read_states.append(ReadState(m.index, m.entries[0].data))


def step_candidate(r, m):
    # A pre-candidate only counts pre-vote responses; a candidate only vote responses.
    my_resp = MsgPreVoteResp if r.state == STATE_PRE_CANDIDATE else MsgVoteResp
    t = m.type
    if t == MsgProp:
        r.logger.info("%d no leader at term %d; dropping proposal", r.id, r.term)
        raise ProposalDropped()
    if t == MsgApp:
        r.become_follower(m.term, m.from_)  # a leader exists at our term (or a later one)
        handle_append_entries(r, m)
    elif t == MsgHeartbeat:
        r.become_follower(m.term, m.from_)
        handle_heartbeat(r, m)
    elif t == MsgSnap:
        r.become_follower(m.term, m.from_)
        handle_snapshot(r, m)
    elif t == my_resp:
        gr, rj, res = r.poll(m.from_, t, not m.reject)
        r.logger.info("%d has received %d %s votes and %d vote rejections", r.id, gr,
                      MSG_NAMES[t], rj)
        if res == VOTE_WON:
            if r.state == STATE_PRE_CANDIDATE:
                from .raft import CAMPAIGN_ELECTION
                r.campaign(CAMPAIGN_ELECTION)
            else:
                r.become_leader()
                from .leader import bcast_append
                bcast_append(r)
        elif res == VOTE_LOST:
            # MsgPreVoteResp with a higher term would have made us follower already; here we
            # give up at our current term.
            r.become_follower(r.term, NONE)
    elif t == MsgTimeoutNow:
        r.logger.debug("%d [term %d state %d] ignored MsgTimeoutNow from %d", r.id, r.term,
                       r.state, m.from_)
