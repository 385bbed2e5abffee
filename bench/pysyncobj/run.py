"""Replication throughput: pyetcd's Raft (3 members) against PySyncObj (3 processes).

Same command size, comparable closed-loop concurrency, everything on 127.0.0.1. Sides:

    pysyncobj            3 PySyncObj processes; the leader process drives C callers
                         (PySyncObj is embedded: a command is a method call, no client RPC)
                         with appendEntriesUseBatch=False, as PySyncObj's own benchmarks run it
    pysyncobj-follower   the same, driven from a follower (commands forwarded to the leader)
    pysyncobj-batch      library defaults (appendEntriesUseBatch=True: AppendEntries wait for
                         the next tick, up to 50 ms)
    pyetcd-nofsync       3 pyetcd members with --unsafe-no-fsync, driven by pyetcd-bench put
                         over gRPC with the clients spread over all endpoints
    pyetcd-fsync         the same with fsync on (pyetcd's default)
    pyetcd-nofsync-leader / pyetcd-fsync-leader   pyetcd-bench against the leader's endpoint only

Every repetition starts fresh clusters and runs the sides interleaved (side order rotates per
repetition). Medians over repetitions are printed, with ratios to the first side.

    python bench/pysyncobj/run.py --reps 3 --clients 16 --total 10000 --val-size 256
    python bench/pysyncobj/run.py --sides pysyncobj,pyetcd-nofsync --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

SIDES = ["pysyncobj", "pysyncobj-follower", "pysyncobj-batch", "pyetcd-nofsync", "pyetcd-fsync",
         "pyetcd-nofsync-leader", "pyetcd-fsync-leader"]
_CLK = os.sysconf("SC_CLK_TCK")


def cpu_secs(pid: int) -> float:
    """utime + stime of one process (all its threads), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK
    except (OSError, IndexError, ValueError):
        return 0.0


def percentile(sorted_vals: list[float], p: float) -> float:
    """Nearest-rank percentile, as pyetcd-bench reports it."""
    if not sorted_vals:
        return 0.0
    k = max(0, min(len(sorted_vals) - 1, -(-len(sorted_vals) * p // 100) - 1))
    return sorted_vals[int(k)]


def free_port() -> int:
    from pyetcd.testing.procs import free_port as fp
    return fp()


# -- PySyncObj -----------------------------------------------------------------------------------

class SyncObjCluster:
    def __init__(self, size: int = 3, batch: bool = False) -> None:
        self.batch = batch
        self.addrs = [f"127.0.0.1:{free_port()}" for _ in range(size)]
        self.procs: list[subprocess.Popen] = []
        self.logdir = tempfile.mkdtemp(prefix="bench-pysyncobj-pso-")

    def warnings(self, text: str = "truncating already-applied") -> int:
        """Lines containing ``text`` in the members' stderr (PySyncObj logs to it)."""
        n = 0
        for i in range(len(self.addrs)):
            try:
                with open(os.path.join(self.logdir, f"m{i}.log"), errors="replace") as f:
                    n += sum(text in line for line in f)
            except OSError:
                pass
        return n

    def start(self, timeout: float = 30.0) -> None:
        for i, a in enumerate(self.addrs):
            partners = ",".join(x for x in self.addrs if x != a)
            with open(os.path.join(self.logdir, f"m{i}.log"), "wb") as log:
                self.procs.append(subprocess.Popen(
                    [sys.executable, os.path.join(HERE, "app.py"), "--self", a,
                     "--partners", partners] + (["--batch"] if self.batch else []),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                    start_new_session=True))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sts = [self.ask(i, {"op": "status"}) for i in range(len(self.procs))]
            leaders = {s["leader"] for s in sts}
            if len(leaders) == 1 and None not in leaders and all(s["ready"] for s in sts):
                return
            time.sleep(0.2)
        raise TimeoutError("PySyncObj cluster elected no leader")

    def ask(self, i: int, req: dict) -> dict:
        p = self.procs[i]
        p.stdin.write(json.dumps(req) + "\n")
        p.stdin.flush()
        line = p.stdout.readline()
        if not line:
            raise RuntimeError(f"PySyncObj member {self.addrs[i]} exited ({p.poll()})")
        return json.loads(line)

    def leader_index(self) -> int:
        leader = self.ask(0, {"op": "status"})["leader"]
        return self.addrs.index(leader)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.stdin.write(json.dumps({"op": "quit"}) + "\n")
                    p.stdin.flush()
                except OSError:
                    pass
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)

    def cleanup(self) -> None:
        shutil.rmtree(self.logdir, ignore_errors=True)


def run_pysyncobj(args, follower: bool, batch: bool) -> dict:
    c = SyncObjCluster(3, batch)
    try:
        c.start()
        li = c.leader_index()
        driver = (li + 1) % 3 if follower else li
        warm = {"op": "run", "clients": args.clients, "total": args.warmup,
                "val_size": args.val_size, "key_space": args.key_space}
        c.ask(driver, warm)
        if c.leader_index() != li:
            raise RuntimeError("leader changed during warm-up")
        pids = [p.pid for p in c.procs]
        cpu0 = [cpu_secs(p) for p in pids]
        r = c.ask(driver, dict(warm, total=args.total, timeout=args.timeout))
        cpu1 = [cpu_secs(p) for p in pids]
        time.sleep(0.5)   # let followers apply the last commit index
        sts = [c.ask(i, {"op": "status"}) for i in range(3)]
    finally:
        c.stop()
        warns = c.warnings()
        c.cleanup()
    lat = sorted(r["lat"])
    return {"count": r["count"], "errors": sum(r["errors"].values()), "secs": r["secs"],
            "rps": r["count"] / r["secs"] if r["secs"] > 0 else 0.0,
            "p50_ms": percentile(lat, 50) * 1e3, "p99_ms": percentile(lat, 99) * 1e3,
            # The driver lives in the leader (or follower) process: its CPU is in here.
            "server_cpu_us_per_cmd": 1e6 * (sum(cpu1) - sum(cpu0)) / max(1, r["count"]),
            "client_cpu_us_per_cmd": None,
            "timed_out": r["timed_out"],
            # Leader first, then the followers (the driver's own CPU is in its member).
            "cpu_us_per_cmd_by_member": [
                1e6 * (cpu1[i] - cpu0[i]) / max(1, r["count"]) for i in [li] +
                [j for j in range(3) if j != li]],
            "applied_per_member": [s["puts"] for s in sts],
            "truncation_warnings": warns}


# -- pyetcd --------------------------------------------------------------------------------------

def run_pyetcd(args, fsync: bool, leader_only: bool) -> dict:
    from pyetcd.testing.cluster import Cluster

    base = tempfile.mkdtemp(prefix="bench-pysyncobj-")
    extra = ["--snapshot-count", str(args.snapshot_count)]
    if not fsync:
        extra.append("--unsafe-no-fsync")
    c = Cluster("pyetcd", base, size=3, proxy=False, extra_args=extra)
    try:
        c.start()
        leader = c.leader()
        eps = [c.members[leader].endpoint] if leader_only else c.endpoints()

        def bench(total: int) -> dict:
            cmd = [sys.executable, "-m", "pyetcd.benchtool.main", "--endpoints", ",".join(eps),
                   "--conns", str(max(len(eps), args.conns)), "--clients", str(args.clients),
                   "--json", "put", "--total", str(total), "--val-size", str(args.val_size),
                   "--key-space-size", str(args.key_space)]
            if args.procs:
                cmd[3:3] = ["--procs", str(args.procs)]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                                 cwd=ROOT)
            if out.returncode != 0:
                raise RuntimeError(f"pyetcd-bench failed: {out.stderr[-2000:]}")
            return json.loads(out.stdout)

        bench(args.warmup)
        if c.leader() != leader:
            raise RuntimeError("leader changed during warm-up")
        names = [leader] + [n for n in c.members if n != leader]
        pids = [c.members[n].proc.pid for n in names]
        cpu0 = [cpu_secs(p) for p in pids]
        r = bench(args.total)
        cpu1 = [cpu_secs(p) for p in pids]
    finally:
        c.stop()
        shutil.rmtree(base, ignore_errors=True)
    pct = r["percentiles_secs"]
    return {"count": r["count"], "errors": r["errors"], "secs": r["total_secs"],
            "rps": r["requests_per_sec"], "p50_ms": pct["p50"] * 1e3, "p99_ms": pct["p99"] * 1e3,
            "server_cpu_us_per_cmd": 1e6 * (sum(cpu1) - sum(cpu0)) / max(1, r["count"]),
            "client_cpu_us_per_cmd": 1e6 * (r.get("client_cpu_secs") or 0.0) / max(1, r["count"]),
            "timed_out": False,
            "cpu_us_per_cmd_by_member": [1e6 * (b - a) / max(1, r["count"])
                                         for a, b in zip(cpu0, cpu1)]}


def run_side(side: str, args) -> dict:
    if side == "pysyncobj":
        return run_pysyncobj(args, follower=False, batch=False)
    if side == "pysyncobj-follower":
        return run_pysyncobj(args, follower=True, batch=False)
    if side == "pysyncobj-batch":
        return run_pysyncobj(args, follower=False, batch=True)
    if side.startswith("pyetcd-"):
        return run_pyetcd(args, fsync="-fsync" in side, leader_only=side.endswith("-leader"))
    raise ValueError(side)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sides", default="pysyncobj,pyetcd-nofsync,pyetcd-fsync",
                    help=f"comma separated, from {', '.join(SIDES)}")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--clients", type=int, default=16, help="concurrent callers (closed loop)")
    ap.add_argument("--conns", type=int, default=3, help="pyetcd-bench gRPC connections")
    ap.add_argument("--procs", type=int, default=0, help="pyetcd-bench worker processes (0 = its default)")
    ap.add_argument("--total", type=int, default=10000, help="commands per measured run")
    ap.add_argument("--warmup", type=int, default=500, help="commands before each measured run")
    ap.add_argument("--val-size", type=int, default=256, help="command payload bytes")
    ap.add_argument("--key-space", type=int, default=1000)
    ap.add_argument("--snapshot-count", type=int, default=100000,
                    help="pyetcd --snapshot-count (etcd's default)")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--json", help="write every run's figures to this file")
    args = ap.parse_args(argv)
    sides = [s for s in args.sides.split(",") if s]
    for s in sides:
        if s not in SIDES:
            ap.error(f"unknown side {s!r}")

    runs: list[dict] = []
    for rep in range(args.reps):
        order = sides[rep % len(sides):] + sides[:rep % len(sides)]
        for side in order:
            load = os.getloadavg()
            try:
                r = run_side(side, args)
            except Exception as e:  # one failed run must not lose the others
                r = {"error": f"{type(e).__name__}: {e}"}
            r.update(side=side, rep=rep, loadavg_before=load, loadavg_after=os.getloadavg())
            runs.append(r)
            if "error" in r:
                print(f"rep {rep} {side:22s} ERROR {r['error']}", flush=True)
            else:
                print(f"rep {rep} {side:22s} {r['rps']:9.0f} cmd/s  p50 {r['p50_ms']:7.2f} ms  "
                      f"p99 {r['p99_ms']:7.2f} ms  server CPU {r['server_cpu_us_per_cmd']:6.0f} us/cmd  "
                      f"errors {r['errors']}  load {load[0]:.1f}", flush=True)

    print(f"\nmedians over {args.reps} reps: {args.clients} callers, {args.total} commands of "
          f"{args.val_size} B")
    print(f"| side | cmd/s | p50 ms | p99 ms | server CPU us/cmd | vs {sides[0]} |")
    print("|---|---:|---:|---:|---:|---:|")
    med = {}
    for side in sides:
        ok = [r for r in runs if r["side"] == side and "error" not in r]
        if not ok:
            print(f"| {side} | - | - | - | - | - |")
            continue
        med[side] = {k: statistics.median(r[k] for r in ok)
                     for k in ("rps", "p50_ms", "p99_ms", "server_cpu_us_per_cmd")}
    base = med.get(sides[0], {}).get("rps")
    for side, m in med.items():
        ratio = f"{m['rps'] / base:.3f}" if base else "-"
        print(f"| {side} | {m['rps']:.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | "
              f"{m['server_cpu_us_per_cmd']:.0f} | {ratio} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": vars(args), "runs": runs, "medians": med}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
