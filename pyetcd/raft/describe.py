"""Human-readable descriptions of Raft values, for logs, debugging and the interaction tests.

Formats (stable: tests/raft/testdata/*.txt depend on them):
  entry    "term/index EntryType data"  (conf changes: "v2 l3 r4 u5" = add voter/learner,
           remove, update; a leave-joint entry shows as "leave-joint")
  message  "from->to MsgType Term:t Log:logterm/index Commit:c Entries:[...] Rejected (Hint: h)"
"""
from .types import (CC_ADD_LEARNER_NODE, CC_ADD_NODE, CC_REMOVE_NODE, CC_UPDATE_NODE,
                    CC_TRANSITION_JOINT_EXPLICIT, CC_TRANSITION_JOINT_IMPLICIT,
                    ENTRY_CONF_CHANGE, ENTRY_CONF_CHANGE_V2, ENTRY_TYPE_NAMES, MSG_NAMES,
                    STATE_NAMES, MsgApp, MsgAppResp, MsgSnap, MsgVote, MsgPreVote, decode_conf_change)

_CC_LETTER = {CC_ADD_NODE: "v", CC_ADD_LEARNER_NODE: "l", CC_REMOVE_NODE: "r",
              CC_UPDATE_NODE: "u"}


def describe_conf_change(cc2):
    if not cc2.changes:
        return "leave-joint"
    s = " ".join("%s%d" % (_CC_LETTER[c.type], c.node_id) for c in cc2.changes)
    if cc2.transition == CC_TRANSITION_JOINT_IMPLICIT:
        s += " (implicit)"
    elif cc2.transition == CC_TRANSITION_JOINT_EXPLICIT:
        s += " (explicit)"
    return s


def describe_entry(e):
    if e.type in (ENTRY_CONF_CHANGE, ENTRY_CONF_CHANGE_V2):
        data = describe_conf_change(decode_conf_change(e))
    else:
        data = repr(e.data)[1:]
    return "%d/%d %s %s" % (e.term, e.index, ENTRY_TYPE_NAMES[e.type], data)


def describe_entries(ents):
    return ", ".join(describe_entry(e) for e in ents)


def describe_snapshot(s):
    md = s.metadata
    return "Index:%d Term:%d ConfState:%r" % (md.index, md.term, md.conf_state)


def describe_message(m):
    s = "%d->%d %s Term:%d" % (m.from_, m.to, MSG_NAMES[m.type], m.term)
    if m.log_term or m.type == MsgApp or m.type == MsgVote or m.type == MsgPreVote:
        s += " Log:%d/%d" % (m.log_term, m.index)
    elif m.index:
        s += " Index:%d" % m.index
    if m.reject:
        s += " Rejected (Hint: %d)" % m.reject_hint if m.type == MsgAppResp else " Rejected"
    if m.commit:
        s += " Commit:%d" % m.commit
    if m.entries:
        s += " Entries:[%s]" % describe_entries(m.entries)
    if m.context:
        s += " Context:%s" % repr(m.context)[1:]
    if m.type == MsgSnap and m.snapshot is not None:
        s += " Snapshot: %s" % describe_snapshot(m.snapshot)
    return s


def describe_hard_state(hs):
    return "Term:%d Vote:%d Commit:%d" % (hs.term, hs.vote, hs.commit)


def describe_soft_state(ss):
    return "Lead:%d State:%s" % (ss.lead, STATE_NAMES[ss.raft_state])


def describe_ready(rd):
    lines = ["Ready MustSync=%s:" % ("true" if rd.must_sync else "false")]
    if rd.soft_state is not None:
        lines.append(describe_soft_state(rd.soft_state))
    if rd.hard_state is not None:
        lines.append("HardState " + describe_hard_state(rd.hard_state))
    if rd.read_states:
        lines.append("ReadStates:")
        lines.extend("  Index:%d Ctx:%s" % (rs.index, repr(rs.request_ctx)[1:])
                     for rs in rd.read_states)
    if rd.entries:
        lines.append("Entries:")
        lines.extend("  " + describe_entry(e) for e in rd.entries)
    if rd.snapshot is not None:
        lines.append("Snapshot " + describe_snapshot(rd.snapshot))
    if rd.committed_entries:
        lines.append("CommittedEntries:")
        lines.extend("  " + describe_entry(e) for e in rd.committed_entries)
    if rd.messages:
        lines.append("Messages:")
        lines.extend("  " + describe_message(m) for m in rd.messages)
    return "\n".join(lines)
