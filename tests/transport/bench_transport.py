"""Loopback figures for the peer transport (measured, never asserted).

    python -m tests.transport.bench_transport [--quick]

Both Transports run in this one process and event loop, so every figure includes the CPU of
sender and receiver together (on a cluster they are separate processes).
"""
from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time

from pyetcd.pb import raftpb

from .helpers import cluster, msg, stop_all, wait_until


async def throughput(a, b, total: int, burst: int, payload: bytes, window: int = 3000):
    """One-way (msgs per wall second, msgs per CPU second): send() bursts of `burst` messages,
    at most `window` unreceived."""
    base = len(b.msgs_count)
    sent = 0
    prebuilt = [msg(1, 2, i, payload=payload) for i in range(burst)]  # app cost not measured
    t0, c0 = time.perf_counter(), time.process_time()
    while sent < total:
        while sent - (len(b.msgs_count) - base) > window:
            await asyncio.sleep(0)
        n = min(burst, total - sent)
        a.t.send(prebuilt[:n])
        sent += n
        await asyncio.sleep(0)
    await wait_until(lambda: len(b.msgs_count) - base >= total, timeout=120, what="all received")
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    assert a.t.peers[2].dropped == 0, "bench must not drop"
    return total / dt, total / dc


async def ping_pong(a, b, rounds: int) -> float:
    """Round trips/s: one message each way per round (a heartbeat and its response)."""
    done = asyncio.Event()
    count = [0]

    hb = [msg(1, 2, 0, mtype=raftpb.MsgHeartbeat)]
    resp = [msg(2, 1, 0, mtype=raftpb.MsgHeartbeatResp)]

    def on_b(msgs):
        for _ in msgs:
            b.t.send(resp)

    def on_a(msgs):
        count[0] += len(msgs)
        if count[0] >= rounds:
            done.set()
        else:
            a.t.send(hb)

    b.t.on_messages, a.t.on_messages = on_b, on_a
    t0, c0 = time.perf_counter(), time.process_time()
    a.t.send([msg(1, 2, 0, mtype=raftpb.MsgHeartbeat)])
    await asyncio.wait_for(done.wait(), 120)
    return rounds / (time.perf_counter() - t0), rounds / (time.process_time() - c0)


async def snapshot_mbps(a, tmpdir: str, size: int) -> float:
    db = os.path.join(tmpdir, "bench.db")
    with open(db, "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    m = msg(1, 2, 0, mtype=raftpb.MsgSnap)
    m.snapshot.metadata.index = 10
    a.snap_status.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    a.t.send_snapshot(m, db)
    await wait_until(lambda: a.snap_status, timeout=300, what="snapshot status")
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    assert a.snap_status == [(2, False)]
    os.unlink(db)
    return size / dt / (1 << 20), size / dc / (1 << 20)


def report(name, unit, rates) -> None:
    wall = statistics.median(r[0] for r in rates)
    cpu = statistics.median(r[1] for r in rates)
    print(f"{name}: median {wall:,.0f} {unit}/s wall, {cpu:,.0f} {unit}/CPU-s "
          f"(runs: {', '.join(f'{w:,.0f}/{c:,.0f}' for w, c in rates)})", flush=True)


async def main(quick: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        a, b = await cluster(2, tmp_path=tmp)

        async def install(msg, path):
            os.unlink(path)
        b.install = None
        b.t.on_snapshot = install
        # Count without keeping every message alive.
        b.msgs_count = []
        b.t.on_messages = lambda ms: b.msgs_count.extend([None] * len(ms))
        try:
            await wait_until(lambda: a.t.active_since(2) is not None, what="stream up")
            n = 20_000 if quick else 100_000
            runs = 1 if quick else 3
            cases = [("heartbeat-size msgs, send() bursts of 100", 100, b""),
                     ("MsgApp with 256 B entry, bursts of 100", 100, b"x" * 256),
                     ("MsgApp with 256 B entry, bursts of 1", 1, b"x" * 256),
                     ("MsgApp with 4 KiB entry, bursts of 100", 100, b"x" * 4096)]
            for name, burst, payload in cases:
                rates = [await throughput(a, b, n if burst > 1 else n // 5, burst, payload)
                         for _ in range(runs)]
                report(name, "msgs", rates)
            rates = [await ping_pong(a, b, 2000 if quick else 10_000) for _ in range(runs)]
            report("ping-pong (1 msg each way per round)", "round trips", rates)
            for size in ([16 << 20] if quick else [64 << 20, 256 << 20]):
                rates = [await snapshot_mbps(a, tmp, size) for _ in range(runs if size <= 64 << 20 else 1)]
                report(f"snapshot of {size >> 20} MiB", "MiB", rates)
        finally:
            await stop_all([a, b])


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.install()
        print("event loop: uvloop")
    except ImportError:
        pass
    asyncio.run(main("--quick" in sys.argv))
