"""Quorum arithmetic: commit index and vote outcome for majority and joint configurations.

A joint configuration (Raft thesis 4.3) is a pair (incoming, outgoing) of majority configs;
a decision needs a majority in both. An empty outgoing config agrees with anything.
"""
from .types import native_disabled

VOTE_PENDING = 1
VOTE_LOST = 2
VOTE_WON = 3
VOTE_NAMES = {VOTE_PENDING: "VotePending", VOTE_LOST: "VoteLost", VOTE_WON: "VoteWon"}

INF_INDEX = (1 << 64) - 1  # the commit index an empty config "agrees" to


def py_majority_committed(matches):
    """Largest index acknowledged by a majority of the given match indexes.

    Sorting ascending, the majority (n//2+1 nodes) have acked at least srt[n - (n//2+1)].
    """
    n = len(matches)
    if n == 0:
        return INF_INDEX
    srt = sorted(matches)
    return srt[n - (n // 2 + 1)]


def py_majority_vote(n, yes, no):
    """Vote outcome among n voters with the given yes/no counts (the rest are missing)."""
    if n == 0:
        return VOTE_WON  # by convention, so that joint quorum with an empty half works
    q = n // 2 + 1
    if yes >= q:
        return VOTE_WON
    if n - no >= q:
        return VOTE_PENDING
    return VOTE_LOST


majority_committed = py_majority_committed
majority_vote = py_majority_vote
if not native_disabled():
    try:
        from pyetcd._native.raft_quorum import majority_committed, majority_vote  # noqa: F811
    except ImportError:
        pass


def _vote_counts(ids, votes):
    yes = no = 0
    for i in ids:
        v = votes.get(i)
        if v is None:
            continue
        if v:
            yes += 1
        else:
            no += 1
    return len(ids), yes, no


class JointConfig:
    """Voters: `incoming` is the current config; `outgoing` is non-empty only while joint."""
    __slots__ = ("incoming", "outgoing")

    def __init__(self, incoming=(), outgoing=()):
        self.incoming = set(incoming)
        self.outgoing = set(outgoing)

    def copy(self):
        return JointConfig(self.incoming, self.outgoing)

    def ids(self):
        return self.incoming | self.outgoing

    def is_joint(self):
        return bool(self.outgoing)

    def committed_index(self, progress):
        """Highest index replicated on a quorum of both halves (min of the two)."""
        idx = majority_committed([progress[i].match for i in self.incoming if i in progress])
        if self.outgoing:
            o = majority_committed([progress[i].match for i in self.outgoing if i in progress])
            if o < idx:
                idx = o
        return idx

    def vote_result(self, votes):
        """votes maps id -> bool; ids absent from it have not voted yet."""
        r1 = majority_vote(*_vote_counts(self.incoming, votes))
        r2 = majority_vote(*_vote_counts(self.outgoing, votes))
        if r1 == r2:
            return r1
        if r1 == VOTE_LOST or r2 == VOTE_LOST:
            return VOTE_LOST
        return VOTE_PENDING

    def __repr__(self):
        s = _fmt(self.incoming)
        if self.outgoing:
            s += "&&" + _fmt(self.outgoing)
        return s


def _fmt(ids):
    return "(" + " ".join(str(i) for i in sorted(ids)) + ")"
