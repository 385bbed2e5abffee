"""A 3-node in-process cluster with no I/O, for measuring the Raft core alone.

Each round proposes a batch on the leader, then runs Ready cycles (persist to
MemoryStorage, deliver messages directly, apply, advance) until the batch is applied
everywhere.
"""
import random

from pyetcd.raft import Config, MemoryStorage, RawNode
from pyetcd.raft.storage import Snapshot, SnapshotMetadata
from pyetcd.raft.types import ConfState


class Cluster:
    def __init__(self, n=3, max_inflight=256, max_msg=1 << 20):
        self.storages = {}
        self.nodes = {}
        self.applied = {}
        for i in range(1, n + 1):
            s = MemoryStorage()
            s.apply_snapshot(Snapshot(b"", SnapshotMetadata(ConfState(range(1, n + 1)), 1, 1)))
            self.storages[i] = s
            self.nodes[i] = RawNode(Config(i, s, rand=random.Random(i),
                                           max_inflight_msgs=max_inflight,
                                           max_size_per_msg=max_msg))
            self.applied[i] = 1
        self.nodes[1].campaign()
        self.run()

    def run(self):
        nodes = self.nodes
        while True:
            busy = False
            for i, rn in nodes.items():
                if not rn.has_ready():
                    continue
                busy = True
                rd = rn.ready()
                st = self.storages[i]
                if rd.entries:
                    st.append(rd.entries)
                if rd.hard_state is not None:
                    st.set_hard_state(rd.hard_state)
                for m in rd.messages:
                    nodes[m.to].step(m)
                if rd.committed_entries:
                    self.applied[i] = rd.committed_entries[-1].index
                rn.advance(rd)
            if not busy:
                return

    def commit_batch(self, datas):
        self.nodes[1].propose_batch(datas)
        self.run()

    def commit_one_by_one(self, datas):
        rn = self.nodes[1]
        for d in datas:
            rn.propose(d)
        self.run()

    def compact(self):
        """Drop applied log prefix so that long runs do not grow memory without bound."""
        for i, st in self.storages.items():
            a = self.applied[i]
            if a - st.snap.metadata.index > 10000:
                st.create_snapshot(a, None, b"")
                st.compact(a)
