"""One robustness run: cluster up, traffic + nemesis, heal, collect, check, report."""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field

from pyetcd.testing.cluster import Cluster

from . import linearizability, recovery, report, watchcheck
from .history import History
from .nemesis import Nemesis
from .traffic import Traffic


@dataclass
class Config:
    kind: str = "etcd"
    members: int = 3
    duration: float = 20.0
    faults: list[str] = field(default_factory=list)
    seed: int = 1
    clients: int = 6
    keys: int = 6
    rate: float = 300.0
    results_dir: str = "results"
    keep_passing: bool = False
    proxy: bool = True


@dataclass
class Result:
    passed: bool
    errors: dict[str, list[str]]
    stats: dict
    report_dir: str | None = None
    faults: list = field(default_factory=list)   # the nemesis log


def analyse(history: History, final_rev: int | None = None,
            member_states: dict | None = None, hashes: tuple[list[str], dict] | None = None,
            member_histories: tuple[int, dict] | None = None) -> Result:
    """Run every checker over a collected history (also used on fakes in the tests)."""
    t = time.monotonic()
    log = watchcheck.RevisionLog(history.watches)
    observed = log.observed_revisions(history.ops)
    errors: dict[str, list[str]] = {}
    lin_errors, lin_stats = linearizability.check(history.ops, observed)
    errors["linearizability"] = lin_errors
    compact_rev = max([history.meta.get("compact_rev", 0)] +
                      [int(m.group(1)) for f in history.faults if f["name"] == "compact"
                       for m in [re.match(r"compact (\d+)", f["detail"])] if m])
    errors["watch"] = watchcheck.check_watches(history.watches, history.ops, log, final_rev,
                                               compact_rev)
    errors["serializable"] = watchcheck.check_serializable(history.ops, log)
    if member_states is not None and final_rev is not None:
        errors["durability"] = recovery.check_durability(member_states, history.ops, log,
                                                         final_rev)
    if member_histories is not None and final_rev is not None:
        start, hists = member_histories
        errors.setdefault("durability", []).extend(
            recovery.check_histories(hists, history.ops, log, start, final_rev))
    stats = {"ops": len(history.ops),
             "ops_ok": sum(o.status == "ok" for o in history.ops),
             "ops_unknown": sum(o.status == "unknown" for o in history.ops),
             "ops_failed": sum(o.status == "fail" for o in history.ops),
             "watches": len(history.watches),
             "watch_events": sum(len(w.events) for w in history.watches),
             "log_complete_upto": log.complete_upto, "final_rev": final_rev,
             "faults": len(history.faults), "linearizability": lin_stats}
    if member_histories is not None:
        stats["member_history_from"] = member_histories[0]
        stats["member_history_events"] = {ep: len(h) for ep, h in member_histories[1].items()}
    if hashes is not None:
        errors["agreement"], table = hashes
        stats["hashkv"] = {str(k): {ep: list(v) for ep, v in t.items()} for k, t in table.items()}
    stats["check_seconds"] = round(time.monotonic() - t, 2)
    errors = {k: v for k, v in errors.items() if v}
    return Result(not errors, errors, stats)


def run_once(cfg: Config, log=print) -> Result:
    work = tempfile.mkdtemp(prefix=f"pyetcd-robust-{cfg.kind}-{cfg.seed}-")
    cluster = Cluster(cfg.kind, work, size=cfg.members, proxy=cfg.proxy)
    prefix = f"/robust/{cfg.seed}/"
    history = None
    try:
        cluster.start(60)
        traffic = Traffic(lambda: [cluster.members[n].endpoint for n in cluster._live()]
                          or cluster.endpoints(running_only=False), prefix, cfg.seed,
                          clients=cfg.clients, keys=cfg.keys, rate=cfg.rate)
        nemesis = Nemesis(cluster, cfg.faults, cfg.seed, traffic)

        async def nem():
            await asyncio.to_thread(nemesis.run, cfg.duration)

        async def main():
            try:
                return await traffic.run(cfg.duration, nem if cfg.faults else None)
            except BaseException:
                nemesis.stop.set()
                raise
            finally:
                await traffic.close()
        history = asyncio.run(main())
        history.faults = nemesis.log
        history.meta = {"kind": cfg.kind, "members": cfg.members, "seed": cfg.seed,
                        "duration": cfg.duration, "faults": cfg.faults, "prefix": prefix,
                        "compact_rev": traffic.compact_rev}
        endpoints = [cluster.members[n].endpoint for n in cluster._live()]
        final_rev = recovery.final_revision(endpoints, prefix)
        states = {ep: recovery.member_state(ep, prefix, final_rev) for ep in endpoints}
        hashes = recovery.check_agreement(endpoints, sorted({max(2, final_rev // 2), final_rev}))
        start = traffic.compact_rev + 1
        hists = {ep: recovery.member_history(ep, prefix, start, final_rev) for ep in endpoints}
        result = analyse(history, final_rev, states, hashes, (start, hists))
    except Exception as e:
        if history is None:
            history = History(meta={"kind": cfg.kind, "seed": cfg.seed})
        result = Result(False, {"harness": [f"{type(e).__name__}: {e}"]}, {})
    finally:
        logs = {n: m.log_tail(60) for n, m in cluster.members.items()}
        cluster.stop()
    result.faults = history.faults
    if not result.passed or cfg.keep_passing:
        result.report_dir = report.write(cfg, history, result, logs)
    shutil.rmtree(work, ignore_errors=True)
    return result


def run_many(cfg: Config, runs: int, log=print) -> list[Result]:
    results = []
    for i in range(runs):
        c = Config(**{**cfg.__dict__, "seed": cfg.seed + i})
        t = time.monotonic()
        r = run_once(c, log)
        results.append(r)
        s = r.stats
        log(f"run {i + 1}/{runs} seed={c.seed} {'PASS' if r.passed else 'FAIL'} "
            f"in {time.monotonic() - t:.0f}s: ops={s.get('ops')} ok={s.get('ops_ok')} "
            f"unknown={s.get('ops_unknown')} failed={s.get('ops_failed')} "
            f"watch_events={s.get('watch_events')} faults={s.get('faults')} "
            f"final_rev={s.get('final_rev')} check={s.get('check_seconds')}s"
            + (f" report={r.report_dir}" if r.report_dir else ""))
        for checker, errs in r.errors.items():
            for e in errs[:3]:
                log(f"  [{checker}] {e}")
    return results


def ensure_dir(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return path
