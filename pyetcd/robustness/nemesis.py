"""Faults injected into a running cluster while traffic flows.

Each fault is a function ``(ctx) -> detail`` that breaks something, waits a little, and repairs
it before returning (so faults never overlap). The nemesis loop runs in a thread (the cluster
API is synchronous) and records every fault with its start and end time on the traffic clock.
At the end :meth:`Nemesis.heal_all` undoes anything left: heals the network, SIGCONTs stopped
members and restarts dead ones.
"""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

import grpc

from pyetcd.pb import rpc, rpc_grpc
from pyetcd.testing.cluster import Cluster


@dataclass
class Ctx:
    cluster: Cluster
    rnd: random.Random
    traffic: object           # robustness.traffic.Traffic (clock, last_full_watch_rev)

    def leader(self) -> str:
        return self.cluster.leader(timeout=20)

    def follower(self) -> str:
        lead = self.leader()
        return self.rnd.choice([n for n in self.cluster._live() if n != lead])

    def target(self, which: str) -> str:
        return self.leader() if which == "leader" else self.follower()

    def pause(self, lo=0.5, hi=2.5) -> float:
        t = self.rnd.uniform(lo, hi)
        time.sleep(t)
        return t


def _kill(which):
    def fault(ctx: Ctx) -> str:
        name = ctx.target(which)
        ctx.cluster.kill(name)
        t = ctx.pause()
        ctx.cluster.restart(name)
        return f"kill -9 {which} {name}, restarted after {t:.1f}s"
    return fault


def _kill_all(ctx: Ctx) -> str:
    """Power loss: every member kill -9'd at once, then all restarted."""
    names = ctx.cluster.running()
    for n in names:
        ctx.cluster.kill(n)
    t = ctx.pause(0.2, 1.5)
    for n in names:
        ctx.cluster.restart(n)
    return f"kill -9 all of {names}, restarted after {t:.1f}s"


def _sigstop(which):
    def fault(ctx: Ctx) -> str:
        name = ctx.target(which)
        ctx.cluster.sigstop(name)
        t = ctx.pause()
        ctx.cluster.sigcont(name)
        return f"SIGSTOP {which} {name} for {t:.1f}s"
    return fault


def _blackhole(which):
    def fault(ctx: Ctx) -> str:
        name = ctx.target(which)
        before = ctx.cluster.net.dropped_bytes
        ctx.cluster.net.blackhole(name)
        t = ctx.pause(1.0, 3.0)
        ctx.cluster.net.heal()
        return (f"blackhole {which} {name} for {t:.1f}s "
                f"({ctx.cluster.net.dropped_bytes - before} bytes dropped)")
    return fault


def _partition(ctx: Ctx) -> str:
    names = ctx.cluster._live()
    ctx.rnd.shuffle(names)
    cut = ctx.rnd.randrange(1, len(names)) if len(names) > 1 else 1
    groups = [set(names[:cut]), set(names[cut:])]
    before = ctx.cluster.net.dropped_bytes
    ctx.cluster.net.partition(groups)
    t = ctx.pause(1.0, 3.0)
    ctx.cluster.net.heal()
    return (f"partition {[sorted(g) for g in groups]} for {t:.1f}s "
            f"({ctx.cluster.net.dropped_bytes - before} bytes dropped)")


def _delay(ctx: Ctx) -> str:
    name = ctx.rnd.choice(ctx.cluster._live())
    d = ctx.rnd.uniform(0.02, 0.3)
    ctx.cluster.net.delay(name, d)
    t = ctx.pause(1.0, 4.0)
    ctx.cluster.net.heal()
    return f"delay {name} by {d * 1000:.0f}ms for {t:.1f}s"


def _move_leader(ctx: Ctx) -> str:
    target = ctx.follower()
    try:
        ctx.cluster.move_leader(target)
    except grpc.RpcError as e:
        return f"move leader to {target} refused: {e.details()}"
    return f"move leader to {target}"


def _replace(ctx: Ctx) -> str:
    name = ctx.follower()
    new = ctx.cluster.replace(name)
    return f"replace follower {name} with fresh member {new}"


def _compact(ctx: Ctx) -> str:
    rev = ctx.traffic.last_full_watch_rev - ctx.rnd.randrange(5, 50)
    if rev < 2:
        return "compact skipped (too early)"
    name = ctx.rnd.choice(ctx.cluster._live())
    try:
        with ctx.cluster.channel(name) as ch:
            rpc_grpc.KVStub(ch).Compact(rpc.CompactionRequest(revision=rev, physical=True),
                                        timeout=10)
    except grpc.RpcError as e:
        # may still have happened: remember it either way
        ctx.traffic.compact_rev = max(ctx.traffic.compact_rev, rev)
        return f"compact {rev} via {name}: {e.details()}"
    ctx.traffic.compact_rev = max(ctx.traffic.compact_rev, rev)
    return f"compact {rev} via {name}"


def _defrag(ctx: Ctx) -> str:
    name = ctx.rnd.choice(ctx.cluster._live())
    try:
        with ctx.cluster.channel(name) as ch:
            rpc_grpc.MaintenanceStub(ch).Defragment(rpc.DefragmentRequest(), timeout=20)
    except grpc.RpcError as e:
        return f"defrag {name}: {e.details()}"
    return f"defrag {name}"


FAULTS = {
    "kill_leader": _kill("leader"), "kill_follower": _kill("follower"), "kill_all": _kill_all,
    "sigstop_leader": _sigstop("leader"), "sigstop_follower": _sigstop("follower"),
    "blackhole_leader": _blackhole("leader"), "blackhole_follower": _blackhole("follower"),
    "partition": _partition, "delay": _delay, "move_leader": _move_leader,
    "replace_member": _replace, "compact": _compact, "defrag": _defrag,
}
NEEDS_PROXY = {"blackhole_leader", "blackhole_follower", "partition", "delay"}
NEEDS_PEERS = NEEDS_PROXY | {"move_leader", "replace_member", "kill_follower",
                             "sigstop_follower", "kill_all"}


def available(members: int, proxy: bool) -> list[str]:
    return [f for f in FAULTS
            if (members > 1 or f not in NEEDS_PEERS) and (proxy or f not in NEEDS_PROXY)]


class Nemesis:
    def __init__(self, cluster: Cluster, faults: list[str], seed: int, traffic) -> None:
        unknown = [f for f in faults if f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown faults {unknown}; known: {sorted(FAULTS)}")
        self.faults = faults
        self.ctx = Ctx(cluster, random.Random(seed), traffic)
        self.log: list[dict] = []
        self.stop = threading.Event()

    def run(self, duration: float) -> list[dict]:
        """Inject faults one after another until ``duration`` has passed, then heal."""
        clock = self.ctx.traffic.now
        end = clock() + duration
        try:
            while clock() < end - 1.0 and self.faults and not self.stop.is_set():
                time.sleep(self.ctx.rnd.uniform(0.5, 1.5))
                name = self.ctx.rnd.choice(self.faults)
                entry = {"name": name, "at": clock(), "end": None, "detail": ""}
                self.log.append(entry)
                try:
                    entry["detail"] = FAULTS[name](self.ctx)
                except Exception as e:  # a fault that cannot be injected is reported, not fatal
                    entry["detail"] = f"fault failed: {type(e).__name__}: {e}"
                    self.heal_all()
                entry["end"] = clock()
        finally:
            self.heal_all()
        return self.log

    def heal_all(self) -> None:
        c = self.ctx.cluster
        if c.net is not None:
            c.net.heal()
        for name in list(c.stopped):
            c.sigcont(name)
        for name, m in c.members.items():
            if m.proc is None or m.proc.poll() is not None:
                c.restart(name)
        c.wait_ready(60)
