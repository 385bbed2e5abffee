"""check perf / check datascale: argument and prefix errors match etcdctl; a short perf run
prints etcdctl's verdict lines and leaves no keys behind."""
import re

import pytest

from .harness import run, pyetcdctl_cmd


@pytest.mark.parametrize("args", [["check", "perf", "--load", "zz"], ["check", "datascale", "--load", "zz"]])
def test_bad_load(pair, args):
    pair.compare(args)


def test_prefix_must_be_empty(pair):
    pair.compare(["put", "/etcdctl-check-perf/x", "1"])
    pair.compare(["check", "perf"])
    pair.compare(["put", "/etcdctl-check-datascale/x", "1"])
    pair.compare(["check", "datascale"])
    pair.compare(["del", "--prefix", "/etcdctl-check-"])


def test_short_perf_run(pair):
    # the 60 s workload shortened through an environment knob; only the shape is checked
    r = run(pyetcdctl_cmd(), ["--endpoints", pair.b.endpoint, "check", "perf", "--prefix", "/cp/",
                              "--auto-compact", "--auto-defrag"],
            env={"PYETCDCTL_CHECK_PERF_SECONDS": "2"}, timeout=60)
    lines = r.out.decode().splitlines()
    assert re.match(r"(PASS: Throughput is|FAIL: Throughput too low:) \d+ writes/s", lines[-4]), lines
    assert re.match(r"(PASS: Slowest request took|FAIL: Slowest request took too long:) [0-9.]+s", lines[-3])
    assert re.match(r"(PASS: Stddev is|FAIL: Stddev too high:) [0-9.]+s", lines[-2])
    assert lines[-1] in ("PASS", "FAIL") and r.rc == (0 if lines[-1] == "PASS" else 1)
    left = run(pyetcdctl_cmd(), ["--endpoints", pair.b.endpoint, "get", "/cp/", "--prefix", "--keys-only"])
    assert left.rc == 0 and left.out == b""
