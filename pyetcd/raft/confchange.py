"""Membership changes: compute the next tracker configuration from ConfChangeSingle lists.

Three ways in (as etcd's confchange.Changer):
- simple(): at most one voter changes, no joint state needed (Raft thesis 4.1);
- enter_joint(): any change set, via the joint configuration C_old,new (thesis 4.3);
- leave_joint(): C_old,new -> C_new; demoted voters become learners here.
Each returns new (config, progress) copies; the tracker is never mutated in place.
"""
from .tracker import Progress
from .types import CC_ADD_LEARNER_NODE, CC_ADD_NODE, CC_REMOVE_NODE, CC_UPDATE_NODE, RaftError


class ConfChangeError(RaftError):
    pass


class Changer:
    def __init__(self, tracker, last_index):
        self.tracker = tracker
        self.last_index = last_index

    def _copy(self):
        cfg = self.tracker.config.copy()
        prs = {}
        for i, pr in self.tracker.progress.items():
            # Progress objects are shared except for is_learner, which changes here: clone.
            c = Progress.__new__(Progress)
            for f in Progress.__slots__:
                setattr(c, f, getattr(pr, f))
            prs[i] = c
        return cfg, prs

    def enter_joint(self, auto_leave, ccs):
        cfg, prs = self._copy()
        if cfg.voters.is_joint():
            raise ConfChangeError("config is already joint")
        if not cfg.voters.incoming:
            raise ConfChangeError("can't make a zero-voter config joint")
        cfg.voters.outgoing = set(cfg.voters.incoming)
        self._apply(cfg, prs, ccs)
        cfg.auto_leave = auto_leave
        _check_invariants(cfg, prs)
        return cfg, prs

    def leave_joint(self):
        cfg, prs = self._copy()
        if not cfg.voters.is_joint():
            raise ConfChangeError("can't leave a non-joint config")
        for i in cfg.learners_next:
            cfg.learners.add(i)
            prs[i].is_learner = True
        cfg.learners_next = set()
        for i in cfg.voters.outgoing:
            if i not in cfg.voters.incoming and i not in cfg.learners:
                del prs[i]
        cfg.voters.outgoing = set()
        cfg.auto_leave = False
        _check_invariants(cfg, prs)
        return cfg, prs

    def simple(self, ccs):
        cfg, prs = self._copy()
        if cfg.voters.is_joint():
            raise ConfChangeError("can't apply simple config change in joint config")
        before = set(cfg.voters.incoming)
        self._apply(cfg, prs, ccs)
        if len(before ^ cfg.voters.incoming) > 1:
            raise ConfChangeError("more than one voter changed without entering joint config")
        _check_invariants(cfg, prs)
        return cfg, prs

    def _apply(self, cfg, prs, ccs):
        for t, node_id in ccs:
            if node_id == 0:
                continue  # etcd ignores changes to node 0 (used by tests for no-ops)
            if t == CC_ADD_NODE:
                self._make_voter(cfg, prs, node_id)
            elif t == CC_ADD_LEARNER_NODE:
                self._make_learner(cfg, prs, node_id)
            elif t == CC_REMOVE_NODE:
                self._remove(cfg, prs, node_id)
            elif t == CC_UPDATE_NODE:
                pass
            else:
                raise ConfChangeError("unexpected conf type %d" % t)
        if not cfg.voters.incoming:
            raise ConfChangeError("removed all voters")

    def _init_progress(self, cfg, prs, node_id, is_learner):
        if is_learner:
            cfg.learners.add(node_id)
        else:
            cfg.voters.incoming.add(node_id)
        # Next = last index: the new node is probed from our tail; recent_active so that a
        # CheckQuorum right after the change does not count it as down.
        prs[node_id] = Progress(0, max(self.last_index, 1), self.tracker.max_inflight,
                                is_learner=is_learner, recent_active=True)

    def _make_voter(self, cfg, prs, node_id):
        pr = prs.get(node_id)
        if pr is None:
            self._init_progress(cfg, prs, node_id, False)
            return
        pr.is_learner = False
        cfg.learners.discard(node_id)
        cfg.learners_next.discard(node_id)
        cfg.voters.incoming.add(node_id)

    def _make_learner(self, cfg, prs, node_id):
        pr = prs.get(node_id)
        if pr is None:
            self._init_progress(cfg, prs, node_id, True)
            return
        if pr.is_learner:
            return
        self._remove(cfg, prs, node_id)
        prs[node_id] = pr
        # A voter of the outgoing config cannot be a learner yet (a node is never both voter
        # and learner); it becomes one when the joint config is left.
        if node_id in cfg.voters.outgoing:
            cfg.learners_next.add(node_id)
        else:
            pr.is_learner = True
            cfg.learners.add(node_id)

    def _remove(self, cfg, prs, node_id):
        if node_id not in prs:
            return
        cfg.voters.incoming.discard(node_id)
        cfg.learners.discard(node_id)
        cfg.learners_next.discard(node_id)
        if node_id not in cfg.voters.outgoing:
            del prs[node_id]


def _check_invariants(cfg, prs):
    for ids in (cfg.voters.ids(), cfg.learners, cfg.learners_next):
        for i in ids:
            if i not in prs:
                raise ConfChangeError("no progress for %d" % i)
    for i in cfg.learners_next:
        if i not in cfg.voters.outgoing:
            raise ConfChangeError("%d is in LearnersNext, but not Voters[1]" % i)
        if prs[i].is_learner:
            raise ConfChangeError("%d is in LearnersNext, but is already marked as learner" % i)
    for i in cfg.learners:
        if i in cfg.voters.outgoing or i in cfg.voters.incoming:
            raise ConfChangeError("%d is in Learners and Voters" % i)
        if not prs[i].is_learner:
            raise ConfChangeError("%d is in Learners, but is not marked as learner" % i)
    if not cfg.voters.is_joint():
        if cfg.learners_next:
            raise ConfChangeError("cfg.LearnersNext must be empty when not joint")
        if cfg.auto_leave:
            raise ConfChangeError("AutoLeave must be false when not joint")


def changes_of(cc2):
    return [(int(c.type), c.node_id) for c in cc2.changes]


def restore(changer, cs):
    """Rebuild the configuration described by a ConfState (from a snapshot or storage)."""
    outgoing = [(CC_ADD_NODE, i) for i in cs.voters_outgoing]
    # Entering the joint state copies outgoing into incoming; remove those first.
    incoming = [(CC_REMOVE_NODE, i) for i in cs.voters_outgoing]
    incoming += [(CC_ADD_NODE, i) for i in cs.voters]
    incoming += [(CC_ADD_LEARNER_NODE, i) for i in cs.learners]
    incoming += [(CC_ADD_LEARNER_NODE, i) for i in cs.learners_next]
    tracker = changer.tracker

    def step(fn):
        cfg, prs = fn()
        tracker.config, tracker.progress = cfg, prs

    if not outgoing:
        for cc in incoming:
            step(lambda: changer.simple([cc]))
    else:
        for cc in outgoing:
            step(lambda: changer.simple([cc]))
        step(lambda: changer.enter_joint(cs.auto_leave, incoming))
    return tracker.config, tracker.progress
