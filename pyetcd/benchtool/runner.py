"""The load driver: async clients over shared gRPC channels, spread over worker processes.

Shape of a run (as etcd's benchmark tool): ``--conns`` gRPC channels are shared round-robin
by ``--clients`` coroutines; each client sends one request, waits for the answer, records
its latency, and takes the next request index until ``--total`` are done.

One Python process tops out at a few thousand unary RPCs a second, so the clients can be
spread over ``--procs`` worker processes. Each worker gets a share of the clients, channels
and request indices (a contiguous slice of [0, total), so sequential-key workloads write the
same keys whatever the split), connects, waits on a barrier so all start together, runs, and
sends back its raw latencies (``array('d')`` bytes), error counts, start/end instants and the
CPU it used. The parent merges them exactly (see report.py).

A workload describes itself with :class:`UnaryWorkload`: the gRPC method path and a function
from the request index to the serialized request. Requests go out as bytes and responses
come back as bytes (no protobuf parse on the hot path); failures surface as gRPC status
errors, which is all the tool needs to know.
"""
from __future__ import annotations

import asyncio
import importlib
import multiprocessing as mp
import os
import resource
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from . import report

# Big enough for large values; etcd's own default request limit is 1.5 MiB.
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 << 20),
                    ("grpc.max_send_message_length", 64 << 20)]


@dataclass
class UnaryWorkload:
    method: str                          # e.g. "/etcdserverpb.KV/Put"
    make: Callable[[int], bytes]         # request index -> serialized request
    setup: Callable | None = None        # optional async fn(channel) run once before the barrier

    async def drive(self, p: "WorkerPlan", channels, barrier) -> dict:
        return await _run_unary(p, self, channels, barrier)


# The contract between a workload's worker side and the parent: ``build(args)`` returns an
# object with ``async drive(plan, channels, barrier) -> dict`` (channels already connected).
# It prepares, awaits :func:`start_together`, runs its share (plan.lo..plan.hi, plan.clients),
# and returns :func:`worker_result`. Streaming workloads (watch, lease keepalive) implement
# their own drive() and get process spreading, merging and the report for free.


@dataclass
class WorkerPlan:
    """One worker's share of the run. Picklable: it crosses the process boundary."""
    module: str        # dotted module with build(args) -> a workload with drive()
    args: dict         # vars() of the parsed arguments
    lo: int            # request indices [lo, hi)
    hi: int
    clients: int
    conns: int
    endpoints: list
    rate: float        # requests/sec for this worker (0 = unlimited)
    dial_timeout: float


def split(n: int, parts: int) -> list[int]:
    """n split into ``parts`` near-equal non-negative integers (larger shares first)."""
    q, r = divmod(n, parts)
    return [q + (1 if i < r else 0) for i in range(parts)]


def plan(module: str, args, total: int) -> list[WorkerPlan]:
    """Divide clients, channels and the request index range over ``args.procs`` workers."""
    procs = max(1, min(args.procs, args.clients))
    clients = split(args.clients, procs)
    conns = [max(1, c) for c in split(max(args.conns, procs), procs)]
    # Requests in proportion to clients, so all workers finish at about the same time.
    shares = [total * c // args.clients for c in clients]
    for i in range(total - sum(shares)):
        shares[i % procs] += 1
    plans, lo = [], 0
    endpoints = list(args.endpoints)
    rate = getattr(args, "rate", 0) or 0
    for k in range(procs):
        hi = lo + shares[k]
        # Rotate endpoints so each worker's first channel goes to a different member.
        eps = endpoints[k % len(endpoints):] + endpoints[:k % len(endpoints)]
        plans.append(WorkerPlan(module, dict(vars(args)), lo, hi, clients[k], conns[k], eps,
                                (rate * clients[k] / args.clients) if rate else 0.0,
                                args.dial_timeout))
        lo = hi
    return plans


class _RateLimiter:
    """Hands out send slots ``1/rate`` apart; a coroutine sleeps until its slot."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate
        self.next = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(self.next, now)
        self.next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def _error_key(e: BaseException) -> str:
    code = getattr(e, "code", None)
    if callable(code):
        try:
            return f"rpc error: code = {code().name} desc = {e.details()}"
        except Exception:  # noqa: BLE001 - a broken error object is still an error to count
            pass
    return f"{type(e).__name__}: {e}"


async def _connect(p: WorkerPlan):
    import grpc

    channels = [grpc.aio.insecure_channel(p.endpoints[i % len(p.endpoints)], options=_CHANNEL_OPTIONS)
                for i in range(p.conns)]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.channel_ready() for c in channels)),
                               p.dial_timeout)
    except asyncio.TimeoutError:
        for c in channels:
            await c.close()
        raise ConnectionError(f"could not connect to {','.join(p.endpoints)} "
                              f"within {p.dial_timeout}s") from None
    return channels


async def _run_unary(p: WorkerPlan, wl: UnaryWorkload, channels, barrier) -> dict:
    # Serializer/deserializer None: requests are bytes already, responses stay bytes.
    calls = [c.unary_unary(wl.method, request_serializer=None, response_deserializer=None)
             for c in channels]
    if wl.setup is not None:
        await wl.setup(channels[0])
    limiter = _RateLimiter(p.rate) if p.rate > 0 else None
    nxt = p.lo
    hi = p.hi
    make = wl.make
    perf = time.perf_counter
    per_client: list[array] = []
    errors: Counter = Counter()

    async def client(ci: int) -> None:
        nonlocal nxt
        call = calls[ci % len(calls)]
        lats = array("d")
        per_client.append(lats)
        append = lats.append
        while nxt < hi:
            i = nxt
            nxt = i + 1
            req = make(i)
            if limiter is not None:
                await limiter.wait()
            t0 = perf()
            try:
                await call(req)
            except Exception as e:  # noqa: BLE001 - count every failure, as etcd's tool does
                errors[_error_key(e)] += 1
                continue
            append(perf() - t0)

    t = await start_together(barrier)
    await asyncio.gather(*(client(ci) for ci in range(p.clients)))
    return worker_result(t, per_client, errors)


async def start_together(barrier) -> tuple[float, float]:
    """Wait for all workers to be ready; returns the (monotonic, CPU seconds) start marks."""
    if barrier is not None:
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
    return time.monotonic(), _cpu_secs()


def worker_result(start: tuple[float, float], latency_chunks, errors) -> dict:
    """What a worker sends back: raw latencies, error counts, its time span and CPU use."""
    end = time.monotonic()
    return {"lats": report.merge_latencies(latency_chunks).tobytes(), "errors": dict(errors),
            "start": start[0], "end": end, "cpu": _cpu_secs() - start[1]}


def _cpu_secs() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)  # all threads, gRPC's included
    return ru.ru_utime + ru.ru_stime


async def _worker_async(p: WorkerPlan, barrier) -> dict:
    from types import SimpleNamespace

    mod = importlib.import_module(p.module)
    wl = mod.build(SimpleNamespace(**p.args))
    channels = await _connect(p)
    try:
        return await wl.drive(p, channels, barrier)
    finally:
        for c in channels:
            await c.close()


def _worker_entry(p: WorkerPlan, barrier, conn) -> None:
    try:
        out = asyncio.run(_worker_async(p, barrier))
    except BaseException as e:  # noqa: BLE001 - report to the parent instead of dying silently
        try:
            barrier.abort()
        except Exception:  # noqa: BLE001
            pass
        out = {"fatal": f"{type(e).__name__}: {e}"}
    conn.send(out)
    conn.close()


def _merge(results: list[dict], procs: int) -> report.Stats:
    fatal = [r["fatal"] for r in results if "fatal" in r]
    if fatal:
        raise RuntimeError("benchmark worker failed: " + "; ".join(sorted(set(fatal))))
    lats = report.merge_latencies(r["lats"] for r in results)
    errors: Counter = Counter()
    for r in results:
        errors.update(r["errors"])
    total_time = max(r["end"] for r in results) - min(r["start"] for r in results)
    cpu = sum(r["cpu"] for r in results)
    return report.compute(lats, total_time, errors, client_cpu=cpu, procs=procs)


def run(module: str, args, total: int) -> report.Stats:
    """Run the unary workload built by ``module.build(args)`` and return its merged stats."""
    plans = plan(module, args, total)
    return _merge(run_workers(plans), len(plans))


def run_workers(plans) -> list[dict]:
    """Run each plan in its own worker (in this process when there is one plan); returns the
    workers' raw results, unmerged, so workloads with extra result fields can merge their own."""
    if len(plans) == 1:
        return [asyncio.run(_worker_async(plans[0], None))]
    # spawn, not fork: gRPC's core threads do not survive fork, and the parent may have a channel.
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(plans))
    pipes, workers = [], []
    for p in plans:
        recv, send = ctx.Pipe(duplex=False)
        w = ctx.Process(target=_worker_entry, args=(p, barrier, send), daemon=True)
        w.start()
        send.close()
        pipes.append(recv)
        workers.append(w)
    results = []
    try:
        for recv, w in zip(pipes, workers):
            try:
                results.append(recv.recv())
            except EOFError:
                results.append({"fatal": f"worker {w.pid} exited with code {w.exitcode}"})
                barrier.abort()
    finally:
        for w in workers:
            w.join(10)
            if w.is_alive():
                w.kill()
                w.join()
    return results


def default_procs(clients: int, endpoints=()) -> int:
    """Worker processes to use when --procs is not given: one per 16 clients, at most one per CPU.

    Measured (bench/README.md): the tool spends 150-200 us of CPU per unary RPC in one
    process, inside grpc.aio's call machinery, so one process is busy at about 16 concurrent
    clients. Even with the server on the same 2-core machine, 2 workers at 64 clients drove
    etcd harder than 1 or 3. ``endpoints`` is accepted for future placement policies.
    """
    ncpu = os.cpu_count() or 1
    return max(1, min(ncpu, -(-clients // 16)))
