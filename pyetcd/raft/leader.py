"""Leader role: replication (MsgApp/MsgSnap), heartbeats, ReadIndex, leader transfer,
and the leader's handling of responses (step_leader)."""
from .describe import describe_conf_change
from .quorum import VOTE_WON
from .read_only import READ_ONLY_LEASE_BASED, READ_ONLY_SAFE
from .storage import Compacted, SnapshotTemporarilyUnavailable
from .tracker import STATE_PROBE, STATE_REPLICATE, STATE_SNAPSHOT
from .types import (
    NONE, Entry, ENTRY_CONF_CHANGE, ENTRY_CONF_CHANGE_V2, ENTRY_NORMAL, Message, MsgApp,
    MsgAppResp, MsgBeat, MsgCheckQuorum, MsgHeartbeat, MsgHeartbeatResp, MsgProp,
    MsgReadIndex, MsgReadIndexResp, MsgSnap, MsgSnapStatus, MsgTimeoutNow, MsgTransferLeader,
    MsgUnreachable, ProposalDropped, RaftError, ReadState, decode_conf_change, STATE_LEADER)


def maybe_send_append(r, to, send_if_empty=True):
    """Send to `to` the entries it lacks (or a snapshot if they are compacted away).

    Returns whether a message was sent. Nothing is sent while the peer's progress is
    paused (probe outstanding, inflight window full, or snapshot in flight).
    """
    pr = r.prs.progress[to]
    if pr.is_paused():
        return False
    rl = r.raft_log
    nxt = pr.next
    try:
        term = rl.term(nxt - 1)
        ents = rl.entries(nxt, r.max_msg_size)
        if not ents and not send_if_empty:
            return False
        need_snap = False
    except Compacted:
        need_snap = True
    if need_snap:
        if not pr.recent_active:
            r.logger.debug("%d ignore sending snapshot to %d since it is not recently active",
                           r.id, to)
            return False
        try:
            snap = rl.snapshot()
        except SnapshotTemporarilyUnavailable:
            r.logger.debug("%d failed to send snapshot to %d because snapshot is temporarily "
                           "unavailable", r.id, to)
            return False
        if snap.is_empty():
            raise RaftError("need non-empty snapshot")
        md = snap.metadata
        r.logger.debug("%d [firstindex: %d, commit: %d] sent snapshot[index: %d, term: %d] to %d "
                       "[%r]", r.id, rl.first_index(), rl.committed, md.index, md.term, to, pr)
        pr.become_snapshot(md.index)
        r.logger.debug("%d paused sending replication messages to %d [%r]", r.id, to, pr)
        r.send(Message(type=MsgSnap, to=to, snapshot=snap))
        return True
    if ents:
        if pr.state == STATE_REPLICATE:
            # Pipelining: assume delivery, advance next, and count the message in flight.
            last = ents[-1].index
            pr.next = last + 1
            pr.inflights.add(last)
        elif pr.state == STATE_PROBE:
            pr.probe_sent = True  # one probe at a time until it is answered
        else:
            raise RaftError("%d is sending append in unhandled state %d" % (r.id, pr.state))
    r.send(Message(type=MsgApp, to=to, index=nxt - 1, log_term=term, entries=ents,
                   commit=rl.committed))
    return True


def send_heartbeat(r, to, ctx):
    # Never tell a follower to commit beyond what it is known to have: it might not have
    # those entries yet (etcd sends min(match, committed)).
    commit = min(r.prs.progress[to].match, r.raft_log.committed)
    r.send(Message(type=MsgHeartbeat, to=to, commit=commit, context=ctx))


def bcast_append(r):
    for i in r.prs.visit_ids():
        if i != r.id:
            maybe_send_append(r, i, True)


def bcast_heartbeat(r):
    bcast_heartbeat_with_ctx(r, r.read_only.last_pending_request_ctx())


def bcast_heartbeat_with_ctx(r, ctx):
    for i in r.prs.visit_ids():
        if i != r.id:
            send_heartbeat(r, i, ctx)


def send_timeout_now(r, to):
    r.send(Message(type=MsgTimeoutNow, to=to))


def response_to_read_index_req(r, req, read_index):
    """Local requests become ReadStates; a follower's request gets a MsgReadIndexResp."""
    if req.from_ == NONE or req.from_ == r.id:
        r.read_states.append(ReadState(read_index, req.entries[0].data))
        return None
    return Message(type=MsgReadIndexResp, to=req.from_, index=read_index, entries=req.entries)


def send_read_index_response(r, m):
    if r.read_only.option == READ_ONLY_SAFE:
        r.read_only.add_request(r.raft_log.committed, m)
        # The leader acks its own heartbeat at once.
        r.read_only.recv_ack(r.id, m.entries[0].data)
        bcast_heartbeat_with_ctx(r, m.entries[0].data)
    elif r.read_only.option == READ_ONLY_LEASE_BASED:
        resp = response_to_read_index_req(r, m, r.raft_log.committed)
        if resp is not None:
            r.send(resp)


def release_pending_read_index_messages(r):
    if not r.pending_read_index_messages:
        return
    if not r.committed_entry_in_current_term():
        return
    msgs, r.pending_read_index_messages = r.pending_read_index_messages, []
    for m in msgs:
        send_read_index_response(r, m)


def _check_conf_change_proposals(r, m):
    """At most one conf change may be pending; invalid ones become empty normal entries
    (so the proposer sees them committed but nothing happens), as etcd does."""
    for i, e in enumerate(m.entries):
        if e.type != ENTRY_CONF_CHANGE and e.type != ENTRY_CONF_CHANGE_V2:
            continue
        cc2 = decode_conf_change(e)
        already_pending = r.pending_conf_index > r.raft_log.applied
        already_joint = r.prs.config.voters.is_joint()
        wants_leave_joint = len(cc2.changes) == 0
        failed = ""
        if already_pending:
            failed = "possible unapplied conf change at index %d (applied to %d)" % (
                r.pending_conf_index, r.raft_log.applied)
        elif already_joint and not wants_leave_joint:
            failed = "must transition out of joint config first"
        elif not already_joint and wants_leave_joint:
            failed = "not in joint state; refusing empty conf change"
        if failed:
            r.logger.info("%d ignoring conf change %s at config %r: %s", r.id,
                          describe_conf_change(cc2),
                          r.prs.config, failed)
            m.entries[i] = Entry(0, 0, ENTRY_NORMAL, b"")
        else:
            r.pending_conf_index = r.raft_log.last_index() + i + 1


def step_leader(r, m):
    t = m.type
    if t == MsgBeat:
        bcast_heartbeat(r)
        return
    if t == MsgCheckQuorum:
        pr = r.prs.progress.get(r.id)
        if pr is not None:
            pr.recent_active = True  # the leader always counts itself active
        if not r.prs.quorum_active():
            r.logger.warning("%d stepped down to follower since quorum is not active", r.id)
            r.become_follower(r.term, NONE)
        for i, pr in r.prs.progress.items():
            if i != r.id:
                pr.recent_active = False
        return
    if t == MsgProp:
        if not m.entries:
            raise RaftError("%d stepped empty MsgProp" % r.id)
        if r.id not in r.prs.progress:
            # We were removed from the configuration: do not accept proposals.
            raise ProposalDropped()
        if r.lead_transferee != NONE:
            r.logger.debug("%d [term %d] transfer leadership to %d is in progress; dropping "
                           "proposal", r.id, r.term, r.lead_transferee)
            raise ProposalDropped()
        m.entries = list(m.entries)
        _check_conf_change_proposals(r, m)
        if not r.append_entry(m.entries):
            raise ProposalDropped()
        bcast_append(r)
        return
    if t == MsgReadIndex:
        if r.prs.is_singleton():
            resp = response_to_read_index_req(r, m, r.raft_log.committed)
            if resp is not None:
                r.send(resp)
            return
        # Until an entry of our term commits, our commit index may be stale (thesis 6.4):
        # hold the request until then.
        if not r.committed_entry_in_current_term():
            r.pending_read_index_messages.append(m)
            return
        send_read_index_response(r, m)
        return

    pr = r.prs.progress.get(m.from_)
    if pr is None:
        r.logger.debug("%d no progress available for %d", r.id, m.from_)
        return
    if t == MsgAppResp:
        _handle_app_resp(r, m, pr)
    elif t == MsgHeartbeatResp:
        pr.recent_active = True
        pr.probe_sent = False
        # A heartbeat answer proves the peer is reachable: free a slot so a full window
        # whose acks were lost does not stall replication forever.
        if pr.state == STATE_REPLICATE and pr.inflights.full():
            pr.inflights.free_first_one()
        if pr.match < r.raft_log.last_index():
            maybe_send_append(r, m.from_, True)
        if r.read_only.option != READ_ONLY_SAFE or not m.context:
            return
        acks = r.read_only.recv_ack(m.from_, m.context)
        if acks is None or r.prs.config.voters.vote_result(acks) != VOTE_WON:
            return
        for rs in r.read_only.advance(m.context):
            resp = response_to_read_index_req(r, rs.req, rs.index)
            if resp is not None:
                r.send(resp)
    elif t == MsgSnapStatus:
        if pr.state != STATE_SNAPSHOT:
            return
        if not m.reject:
            pr.become_probe()
            r.logger.debug("%d snapshot succeeded, resumed sending replication messages to %d "
                           "[%r]", r.id, m.from_, pr)
        else:
            pr.pending_snapshot = 0
            pr.become_probe()
            r.logger.debug("%d snapshot failed, resumed sending replication messages to %d [%r]",
                           r.id, m.from_, pr)
        # Wait for the follower's MsgAppResp (or a heartbeat response) before probing.
        pr.probe_sent = True
    elif t == MsgUnreachable:
        # Optimistic pipelining to an unreachable peer is pointless: fall back to probing.
        if pr.state == STATE_REPLICATE:
            pr.become_probe()
        r.logger.debug("%d failed to send message to %d because it is unreachable [%r]",
                       r.id, m.from_, pr)
    elif t == MsgTransferLeader:
        _handle_transfer_leader(r, m, pr)


def _handle_app_resp(r, m, pr):
    pr.recent_active = True
    rl = r.raft_log
    if m.reject:
        r.logger.debug("%d received MsgAppResp(rejected, hint: (index %d, term %d)) from %d for "
                       "index %d", r.id, m.reject_hint, m.log_term, m.from_, m.index)
        next_probe = m.reject_hint
        if m.log_term > 0:
            # Skip every entry of ours whose term is above the follower's term at the hint:
            # none of them can match.
            next_probe = rl.find_conflict_by_term(m.reject_hint, m.log_term)
        if pr.maybe_decr_to(m.index, next_probe):
            r.logger.debug("%d decreased progress of %d to [%r]", r.id, m.from_, pr)
            if pr.state == STATE_REPLICATE:
                pr.become_probe()
            maybe_send_append(r, m.from_, True)
        return
    old_paused = pr.is_paused()
    if not pr.maybe_update(m.index):
        return
    if pr.state == STATE_PROBE:
        pr.become_replicate()
    elif pr.state == STATE_SNAPSHOT and pr.match >= pr.pending_snapshot:
        r.logger.debug("%d recovered from needing snapshot, resumed sending replication "
                       "messages to %d [%r]", r.id, m.from_, pr)
        pr.become_probe()
        pr.become_replicate()
    elif pr.state == STATE_REPLICATE:
        pr.inflights.free_le(m.index)
    if r.maybe_commit():
        release_pending_read_index_messages(r)
        bcast_append(r)
    elif old_paused:
        # The peer was paused and is not any more: catch it up now.
        maybe_send_append(r, m.from_, True)
    # Flow control may now allow several messages at once (e.g. after probe -> replicate):
    # send as many as fit, but no empty ones.
    while maybe_send_append(r, m.from_, False):
        pass
    if m.from_ == r.lead_transferee and pr.match == rl.last_index():
        r.logger.info("%d sent MsgTimeoutNow to %d after received MsgAppResp", r.id, m.from_)
        send_timeout_now(r, m.from_)


def _handle_transfer_leader(r, m, pr):
    if pr.is_learner:
        r.logger.debug("%d is learner. Ignored transferring leadership", r.id)
        return
    transferee = m.from_
    last = r.lead_transferee
    if last != NONE:
        if last == transferee:
            r.logger.info("%d [term %d] transfer leadership to %d is in progress, ignores request "
                          "to same node %d", r.id, r.term, transferee, transferee)
            return
        r.abort_leader_transfer()
        r.logger.info("%d [term %d] abort previous transferring leadership to %d", r.id, r.term,
                      last)
    if transferee == r.id:
        r.logger.debug("%d is already leader. Ignored transferring leadership to self", r.id)
        return
    r.logger.info("%d [term %d] starts to transfer leadership to %d", r.id, r.term, transferee)
    # The transfer must finish within an election timeout (tick_heartbeat aborts it).
    r.election_elapsed = 0
    r.lead_transferee = transferee
    if pr.match == r.raft_log.last_index():
        send_timeout_now(r, transferee)
        r.logger.info("%d sends MsgTimeoutNow to %d immediately as %d already has up-to-date log",
                      r.id, transferee, transferee)
    else:
        maybe_send_append(r, transferee, True)


__all__ = ["maybe_send_append", "bcast_append", "bcast_heartbeat", "step_leader",
           "STATE_LEADER"]
