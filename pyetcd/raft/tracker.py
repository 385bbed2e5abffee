"""Leader-side view of each follower: Progress (probe/replicate/snapshot), Inflights,
and the ProgressTracker holding the configuration, progress map and votes."""
from .quorum import VOTE_WON, JointConfig, _fmt
from .types import ConfState, native_disabled

STATE_PROBE = 0
STATE_REPLICATE = 1
STATE_SNAPSHOT = 2
PROGRESS_STATE_NAMES = ["StateProbe", "StateReplicate", "StateSnapshot"]


class PyInflights:
    """Ring buffer of the last index of each MsgApp in flight to one follower.

    Bounds pipelining (etcd's MaxInflightMsgs): when full, the leader stops sending MsgApp
    until acks free slots.
    """
    __slots__ = ("start", "count", "size", "buffer")

    def __init__(self, size):
        self.start = 0
        self.count = 0
        self.size = size
        self.buffer = [0] * size

    def clone(self):
        c = PyInflights(self.size)
        c.start, c.count, c.buffer = self.start, self.count, list(self.buffer)
        return c

    def add(self, index):
        if self.count >= self.size:
            raise RuntimeError("cannot add into a Full inflights")
        nxt = self.start + self.count
        if nxt >= self.size:
            nxt -= self.size
        self.buffer[nxt] = index
        self.count += 1

    def free_le(self, to):
        """Free every inflight message whose last index is <= to."""
        if self.count == 0 or to < self.buffer[self.start]:
            return
        idx = self.start
        i = 0
        while i < self.count:
            if to < self.buffer[idx]:
                break
            idx += 1
            if idx >= self.size:
                idx -= self.size
            i += 1
        self.count -= i
        self.start = idx
        if self.count == 0:
            self.start = 0

    def free_first_one(self):
        if self.count:
            self.free_le(self.buffer[self.start])

    def full(self):
        return self.count == self.size

    def reset(self):
        self.count = 0
        self.start = 0


Inflights = PyInflights
if not native_disabled():
    try:
        from pyetcd._native.raft_tracker import Inflights  # noqa: F811
    except ImportError:
        pass


class Progress:
    """Leader's knowledge of one peer. match: highest index known replicated there;
    next: next index to send. In StateSnapshot, pending_snapshot is the snapshot's index."""
    __slots__ = ("match", "next", "state", "pending_snapshot", "recent_active", "probe_sent",
                 "inflights", "is_learner")

    def __init__(self, match, next_, max_inflight, is_learner=False, recent_active=False):
        self.match = match
        self.next = next_
        self.state = STATE_PROBE
        self.pending_snapshot = 0
        self.recent_active = recent_active
        self.probe_sent = False
        self.inflights = Inflights(max_inflight)
        self.is_learner = is_learner

    def reset_state(self, state):
        self.probe_sent = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.reset()

    def become_probe(self):
        # After a snapshot, resume right after it (the follower has at least that much).
        if self.state == STATE_SNAPSHOT:
            pending = self.pending_snapshot
            self.reset_state(STATE_PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self.reset_state(STATE_PROBE)
            self.next = self.match + 1

    def become_replicate(self):
        self.reset_state(STATE_REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshoti):
        self.reset_state(STATE_SNAPSHOT)
        self.pending_snapshot = snapshoti

    def maybe_update(self, n):
        """The follower acked n. Returns False if n is stale (not beyond match)."""
        updated = False
        if self.match < n:
            self.match = n
            updated = True
            self.probe_sent = False
        if self.next < n + 1:
            self.next = n + 1
        return updated

    def optimistic_update(self, n):
        self.next = n + 1

    def maybe_decr_to(self, rejected, match_hint):
        """The follower rejected a MsgApp at index `rejected`. Returns False for a stale reject."""
        if self.state == STATE_REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), 1)
        self.probe_sent = False
        return True

    def is_paused(self):
        s = self.state
        if s == STATE_PROBE:
            return self.probe_sent
        if s == STATE_REPLICATE:
            return self.inflights.full()
        return True

    def __repr__(self):
        s = "%s match=%d next=%d" % (PROGRESS_STATE_NAMES[self.state], self.match, self.next)
        if self.is_learner:
            s += " learner"
        if self.is_paused():
            s += " paused"
        if self.pending_snapshot:
            s += " pendingSnap=%d" % self.pending_snapshot
        if not self.recent_active:
            s += " inactive"
        if self.inflights.count:
            s += " inflight=%d" % self.inflights.count
            if self.inflights.full():
                s += "[full]"
        return s


class TrackerConfig:
    """voters (joint), learners, learners_next (voters being demoted that become learners
    when the joint config is left), auto_leave."""
    __slots__ = ("voters", "learners", "learners_next", "auto_leave")

    def __init__(self):
        self.voters = JointConfig()
        self.learners = set()
        self.learners_next = set()
        self.auto_leave = False

    def copy(self):
        c = TrackerConfig()
        c.voters = self.voters.copy()
        c.learners = set(self.learners)
        c.learners_next = set(self.learners_next)
        c.auto_leave = self.auto_leave
        return c

    def __repr__(self):
        s = "voters=%r" % self.voters
        if self.learners:
            s += " learners=%s" % _fmt(self.learners)
        if self.learners_next:
            s += " learners_next=%s" % _fmt(self.learners_next)
        if self.auto_leave:
            s += " autoleave"
        return s


class ProgressTracker:
    def __init__(self, max_inflight):
        self.config = TrackerConfig()
        self.progress = {}
        self.votes = {}
        self.max_inflight = max_inflight

    def conf_state(self):
        c = self.config
        return ConfState(c.voters.incoming, c.learners, c.voters.outgoing, c.learners_next,
                         c.auto_leave)

    def is_singleton(self):
        v = self.config.voters
        return len(v.incoming) == 1 and not v.outgoing

    def committed(self):
        return self.config.voters.committed_index(self.progress)

    def visit_ids(self):
        """Ids with progress, sorted so that message order is deterministic."""
        return sorted(self.progress)

    def quorum_active(self):
        votes = {i: pr.recent_active for i, pr in self.progress.items() if not pr.is_learner}
        return self.config.voters.vote_result(votes) == VOTE_WON

    def voter_nodes(self):
        return sorted(self.config.voters.ids())

    def learner_nodes(self):
        return sorted(self.config.learners)

    def reset_votes(self):
        self.votes = {}

    def record_vote(self, id_, granted):
        if id_ not in self.votes:
            self.votes[id_] = granted

    def tally_votes(self):
        granted = rejected = 0
        for i, pr in self.progress.items():
            if pr.is_learner:
                continue
            v = self.votes.get(i)
            if v is None:
                continue
            if v:
                granted += 1
            else:
                rejected += 1
        return granted, rejected, self.config.voters.vote_result(self.votes)
