"""Wall time of `pyetcdctl get foo` vs `etcdctl get foo` against one real etcd (median of N runs).

    python bench/cli/bench_get.py [-n 30]

Runs are interleaved (etcdctl, pyetcdctl, bare interpreter, ...) so that machine load hits all
three alike. The bare interpreter (`python -c pass`, same site-packages) shows how much of
pyetcdctl's time is Python's own start-up before any of our code runs. Besides wall time, each
run's CPU time (user + system, from the children's rusage) is reported: it moves much less with
the load other processes put on the machine. The load average is printed before and after.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from pyetcd.testing import procs  # noqa: E402


def timed(cmd, env) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"{cmd} failed: {p.stderr.decode()}")
    return dt, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="keep PYTHONDONTWRITEBYTECODE (every run recompiles pyetcdctl's modules)")
    ap.add_argument("--baseline", metavar="DIR",
                    help="also time pyetcdctl from another source tree (e.g. an older "
                         "commit: git archive <rev> pyetcd | tar -x -C DIR), interleaved with the rest")
    ap.add_argument("--no-site", action="store_true",
                    help="also time `python -S` runs (pyetcdctl and a bare interpreter): start-up "
                         "without site-packages .pth hooks, as in an environment without this "
                         "sandbox's editable-install finder and CA hook (get needs only the stdlib)")
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
        envs = {k: env for k in cmds}
        if opts.no_site:
            cmds["pyetcdctl -S"] = [sys.executable, "-S", "-m", "pyetcd.cli", "--endpoints", m.endpoint, "get", "foo"]
            cmds["python -S -c pass"] = [sys.executable, "-S", "-c", "pass"]
            envs["pyetcdctl -S"] = envs["python -S -c pass"] = env
        if opts.baseline:  # the same launcher; PYTHONPATH decides which pyetcd it imports
            cmds["baseline"] = cmds["pyetcdctl"]
            envs["baseline"] = dict(env, PYTHONPATH=os.path.abspath(opts.baseline))
        times = {k: [] for k in cmds}
        cpu = {k: [] for k in cmds}
        for k, c in cmds.items():  # warm-up (and bytecode cache fill)
            timed(c, envs[k])
        load_before = os.getloadavg()
        for _ in range(opts.n):
            for k, c in cmds.items():
                wall, used = timed(c, envs[k])
                times[k].append(wall)
                cpu[k].append(used)
        load_after = os.getloadavg()
    shutil.rmtree(base, ignore_errors=True)
    if not opts.no_bytecode_cache:
        shutil.rmtree(pyc_dir, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"load average (1/5/15 min): before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; {os.cpu_count()} CPUs")
    for k, v in med.items():
        print(f"{k:16s} wall median {v * 1000:7.1f} ms   min {min(times[k]) * 1000:7.1f} ms   "
              f"CPU median {cmed[k] * 1000:6.1f} ms   (n={opts.n})")
    print(f"ratio pyetcdctl/etcdctl (median wall): {med['pyetcdctl'] / med['etcdctl']:.2f}x")
    print(f"ratio pyetcdctl/etcdctl (median CPU):  {cmed['pyetcdctl'] / cmed['etcdctl']:.2f}x")
    print(f"ratio python-startup/etcdctl (median wall): {med['python -c pass'] / med['etcdctl']:.2f}x")
    if opts.no_site:
        print(f"ratio pyetcdctl -S/etcdctl (median wall): {med['pyetcdctl -S'] / med['etcdctl']:.2f}x")
    if opts.baseline:
        print(f"ratio baseline/etcdctl (median wall): {med['baseline'] / med['etcdctl']:.2f}x; "
              f"pyetcdctl - baseline: wall {(med['pyetcdctl'] - med['baseline']) * 1000:+.1f} ms, "
              f"CPU {(cmed['pyetcdctl'] - cmed['baseline']) * 1000:+.1f} ms")


if __name__ == "__main__":
    main()
