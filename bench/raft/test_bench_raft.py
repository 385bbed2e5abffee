"""pytest-benchmark microbenchmarks of the Raft core (measured, never asserted).

    python -m pytest bench/raft/test_bench_raft.py --benchmark-only
    PYETCD_RAFT_PURE=1 python -m pytest bench/raft/test_bench_raft.py --benchmark-only
"""
import os
import random
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cluster import Cluster  # noqa: E402
from pyetcd.raft import log as rlog, quorum, tracker, types  # noqa: E402

PAYLOAD = b"x" * 128


@pytest.mark.parametrize("batch", [100, 1000])
def test_cluster_commit_batch(benchmark, batch):
    c = Cluster()
    datas = [PAYLOAD] * batch

    def go():
        c.commit_batch(datas)
        c.compact()
    benchmark(go)
    benchmark.extra_info["entries_per_round"] = batch
    benchmark.extra_info["native"] = types.NATIVE_ENTRY


def test_cluster_single_proposals(benchmark):
    c = Cluster()
    datas = [PAYLOAD] * 100
    benchmark(lambda: c.commit_one_by_one(datas))
    benchmark.extra_info["entries_per_round"] = 100


@pytest.mark.parametrize("impl", ["native", "python"])
def test_majority_committed(benchmark, impl):
    fn = quorum.majority_committed if impl == "native" else quorum.py_majority_committed
    matches = [random.Random(1).randrange(1000) for _ in range(5)]
    benchmark(fn, matches)


@pytest.mark.parametrize("impl", ["native", "python"])
def test_inflights(benchmark, impl):
    cls = tracker.Inflights if impl == "native" else tracker.PyInflights

    def go():
        f = cls(256)
        for i in range(1000):
            f.add(i)
            if f.full():
                f.free_le(i - 8)
    benchmark(go)


@pytest.mark.parametrize("impl", ["native", "python"])
def test_encode_entry(benchmark, impl):
    if impl == "native":
        benchmark(types.encode_entry, types.Entry(5, 123456, 0, PAYLOAD))
    else:
        benchmark(types._py_encode_entry, types._PyEntry(5, 123456, 0, PAYLOAD))


@pytest.mark.parametrize("impl", ["native", "python"])
def test_unstable_append_slice(benchmark, impl):
    ucls, ecls = ((rlog.Unstable, types.Entry) if impl == "native"
                  else (rlog.PyUnstable, types._PyEntry))

    def go():
        u = ucls(1)
        idx = 1
        for _ in range(100):
            u.truncate_and_append([ecls(1, idx + k) for k in range(10)])
            idx += 10
            for k in range(10):
                u.maybe_term(idx - 1 - k)
            u.slice(idx - 10, idx)
            u.stable_to(idx - 1, 1)
    benchmark(go)
