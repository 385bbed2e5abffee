"""Wall time of `pyetcdctl get foo` vs `etcdctl get foo` against one real etcd (median of N runs).

    python bench/cli/bench_get.py [-n 30]

Runs are interleaved (etcdctl, pyetcdctl, bare interpreter, ...) so that machine load hits all
three alike. The bare interpreter (`python -c pass`, same site-packages) shows how much of
pyetcdctl's time is Python's own start-up before any of our code runs.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from pyetcd.testing import procs  # noqa: E402


def timed(cmd, env) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{cmd} failed: {p.stderr.decode()}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="keep PYTHONDONTWRITEBYTECODE (every run recompiles pyetcdctl's modules)")
    opts = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["PYTHONPATH"] = ROOT
    if not opts.no_bytecode_cache:
        # an installed CLI runs from cached bytecode; this sandbox sets PYTHONDONTWRITEBYTECODE
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        pyc_dir = tempfile.mkdtemp(prefix="bench-cli-pyc-")
        env["PYTHONPYCACHEPREFIX"] = pyc_dir  # keep .pyc files out of the source tree
    script = shutil.which("pyetcdctl")
    base = tempfile.mkdtemp(prefix="bench-cli-")
    with procs.start_member("etcd", base) as m:
        subprocess.run([procs.etcdctl_bin(), "--endpoints", m.endpoint, "put", "foo", "bar"], check=True,
                       capture_output=True)
        cmds = {
            "etcdctl": [procs.etcdctl_bin(), "--endpoints", m.endpoint, "get", "foo"],
            "pyetcdctl": ([script] if script else [sys.executable, "-m", "pyetcd.cli"])
            + ["--endpoints", m.endpoint, "get", "foo"],
            "python -c pass": [sys.executable, "-c", "pass"],
        }
        times = {k: [] for k in cmds}
        for c in cmds.values():  # warm-up (and bytecode cache fill)
            timed(c, env)
        for _ in range(opts.n):
            for k, c in cmds.items():
                times[k].append(timed(c, env))
    shutil.rmtree(base, ignore_errors=True)
    if not opts.no_bytecode_cache:
        shutil.rmtree(pyc_dir, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:16s} median {v * 1000:7.1f} ms   min {min(times[k]) * 1000:7.1f} ms   (n={opts.n})")
    print(f"ratio pyetcdctl/etcdctl (median): {med['pyetcdctl'] / med['etcdctl']:.2f}x")
    print(f"ratio python-startup/etcdctl (median): {med['python -c pass'] / med['etcdctl']:.2f}x")


if __name__ == "__main__":
    main()
