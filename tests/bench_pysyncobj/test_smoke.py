"""Smoke test of bench/pysyncobj/run.py: each side runs end to end on a tiny load.

Only counts are checked (every command committed, and applied on every PySyncObj member);
throughput is measured by the runner, never asserted here.
"""
import argparse
import importlib.util
import os

import pytest

pytest.importorskip("pysyncobj")

_RUN = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "pysyncobj", "run.py")


def _load_runner():
    spec = importlib.util.spec_from_file_location("bench_pysyncobj_run", _RUN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _args(**kw):
    base = dict(clients=4, conns=3, procs=1, total=120, warmup=30, val_size=64, key_space=10,
                snapshot_count=100000, timeout=120.0)
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("side", ["pysyncobj", "pysyncobj-follower", "pysyncobj-batch"])
def test_pysyncobj_side_commits_everything(side):
    run = _load_runner()
    r = run.run_side(side, _args())
    assert r["errors"] == 0 and not r["timed_out"]
    assert r["count"] == 120
    assert r["applied_per_member"] == [150, 150, 150]
    assert r["p50_ms"] > 0


@pytest.mark.timeout(180)
def test_pyetcd_side_runs():
    run = _load_runner()
    r = run.run_side("pyetcd-nofsync", _args())
    assert r["errors"] == 0
    assert r["count"] == 120
    assert r["p50_ms"] > 0
