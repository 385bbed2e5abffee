"""`watch`: many watchers on many streams, then puts at a given rate, as etcd's `benchmark watch`.

Flags are etcd's: --streams watch streams, each with --watch-per-stream watchers, over
--watched-key-total keys; then --put-total puts at --put-rate per second (0 = no limit) from
--clients clients over --conns connections.

Which watcher watches what is fixed, so every worker process knows how many events it must
receive: watcher g (g = stream * watch_per_stream + j, counted over the whole run) watches key
``g % watched_key_total``, and put i writes key ``i % watched_key_total``. A put therefore
produces one event for each watcher of its key, and the run expects
``sum over puts of watchers(key)`` events in all.

Two phases, each reported:

- creation: all streams send their create requests at once (pipelined per stream, as etcd's
  server handles them in order); the latency of a watcher is from its create request being
  written to its ``created`` response. Watchers created per second = watchers / phase time.
- events: after every worker's watchers are up (a second barrier), the puts start. Each put's
  value begins with the sender's ``time.monotonic()`` (one system-wide clock on Linux, so it
  holds across worker processes); an event's latency is from that instant to its receipt.
  The main report (count, events per second, percentiles) is about events; a watcher that
  gets an event for a key it does not watch, a canceled watcher, a failed put, or an event
  still missing --timeout seconds after the last put are errors.

Unlike etcd's tool (which times an event from its own receipt, so always ~0), the latency here
is put send to event receipt under load; `watch-latency` measures it on an idle server.
"""
from __future__ import annotations

import asyncio
import struct
import time
from array import array
from collections import Counter

from .. import report, runner
from . import keys

COMMAND = "watch"
HELP = "Benchmark watch"

WATCH_METHOD = "/etcdserverpb.Watch/Watch"
PUT_METHOD = "/etcdserverpb.KV/Put"
_TS = struct.Struct("<d")


def add_arguments(p) -> None:
    p.add_argument("--streams", type=int, default=10, help="Total watch streams")
    p.add_argument("--watch-per-stream", type=int, default=100, help="Total watchers per stream")
    p.add_argument("--watched-key-total", type=int, default=1, help="Total number of keys to be watched")
    p.add_argument("--put-rate", dest="rate", type=float, default=0,
                   help="Number of keys to put per second (0 is no limit)")
    p.add_argument("--put-total", dest="total", type=int, default=1000, help="Number of put requests")
    p.add_argument("--key-size", type=int, default=32, help="Key size of watch request")
    p.add_argument("--val-size", type=int, default=8,
                   help="Value size of put request (at least 8: the send time is carried in it)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="Seconds to wait for watchers to be created, and for events after the last put")


def validate(args) -> None:
    if args.streams < 1:
        raise ValueError("--streams must be at least 1")
    if args.watch_per_stream < 1:
        raise ValueError("--watch-per-stream must be at least 1")
    if args.watched_key_total < 1:
        raise ValueError("--watched-key-total must be at least 1")
    if args.val_size < _TS.size:
        raise ValueError(f"--val-size must be at least {_TS.size}")
    if args.rate < 0:
        raise ValueError("--put-rate must not be negative")
    keys.check_key_space(args.key_size, args.watched_key_total)


# ---- helpers shared by the streaming workloads -------------------------------------------

class RateLimiter:
    """Send slots ``1/rate`` apart, shared by the coroutines of one worker."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate
        self.next = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(self.next, now)
        self.next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def open_stream(channel, method: str):
    """A raw bytes-in, bytes-out bidirectional stream on ``channel``."""
    return channel.stream_stream(method, request_serializer=None, response_deserializer=None)()


def error_key(e: BaseException) -> str:
    code = getattr(e, "code", None)
    if callable(code):
        try:
            return f"rpc error: code = {code().name} desc = {e.details()}"
        except Exception:  # noqa: BLE001
            pass
    return f"{type(e).__name__}: {e}"


async def barrier_wait(barrier) -> None:
    if barrier is not None:
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)


def run_plans(plans: list) -> list[dict]:
    """Run the workers of ``plans`` (as runner.run does) and return their raw result dicts.

    The streaming workloads need this rather than runner.run because their workers send back
    more than latencies (watchers created, creation latencies), which the caller merges.
    """
    return runner.run_workers(plans)


def pct_json(lats) -> dict:
    s = sorted(lats)
    return {f"p{p:g}": report.percentile(s, p) for p in report.PERCENTILES} if s else {}


# ---- the workload -------------------------------------------------------------------------

def expected_events(total: int, nkeys: int, watchers) -> int:
    """Events the watchers (global indices) receive when puts 0..total-1 go round the keys."""
    q, r = divmod(total, nkeys)
    return sum(q + (1 if g % nkeys < r else 0) for g in watchers)


class WatchWorkload:
    def __init__(self, args):
        from pyetcd.pb import rpc

        self.rpc = rpc
        self.args = args
        self.key_table = [keys.key_bytes(n, args.key_size) for n in range(args.watched_key_total)]
        self.pad = keys.random_value(args.val_size - _TS.size)

    async def drive(self, p, channels, barrier) -> dict:
        a, rpc = self.args, self.rpc
        s_lo, s_hi = a.stream_lo, a.stream_hi
        m, nkeys = a.watch_per_stream, a.watched_key_total
        mono = time.monotonic
        parse = rpc.WatchResponse.FromString
        errors: Counter = Counter()
        event_lats = array("d")
        create_lats = array("d")
        need = expected_events(a.total, nkeys, range(s_lo * m, s_hi * m))
        got = 0
        all_created = asyncio.Event()
        all_events = asyncio.Event()
        if need == 0:
            all_events.set()
        n_streams = s_hi - s_lo
        created_streams = 0
        closing = False

        async def reader(call, sent: list, ks: list, wid_key: dict) -> None:
            nonlocal got, created_streams
            k = 0
            while True:
                try:
                    msg = await call.read()
                except Exception as e:  # noqa: BLE001
                    if not closing:
                        errors[error_key(e)] += 1
                    return
                now = mono()
                if not isinstance(msg, bytes):  # grpc.aio.EOF
                    if not closing:
                        errors["watch stream closed by the server"] += 1
                    return
                wr = parse(msg)
                if wr.created:
                    if k < len(sent):
                        create_lats.append(now - sent[k])
                        wid_key[wr.watch_id] = ks[k]
                    k += 1
                    if wr.canceled:
                        errors[f"watch create canceled: {wr.cancel_reason}"] += 1
                    if k == m:
                        created_streams += 1
                        if created_streams == n_streams:
                            all_created.set()
                    continue
                if wr.canceled:
                    errors[f"watch canceled: {wr.cancel_reason or 'compacted'}"] += 1
                    continue
                if not wr.events:
                    continue  # progress notification
                want = wid_key.get(wr.watch_id)
                for ev in wr.events:
                    if ev.kv.key != want:
                        errors["event for a key the watcher does not watch"] += 1
                        continue
                    event_lats.append(now - _TS.unpack_from(ev.kv.value)[0])
                got += len(wr.events)
                if got >= need:
                    all_events.set()

        calls, tasks = [], []

        async def open_and_create(s: int) -> None:
            call = open_stream(channels[s % len(channels)], WATCH_METHOD)
            calls.append(call)
            sent: list[float] = []
            ks = [self.key_table[(s * m + j) % nkeys] for j in range(m)]
            tasks.append(asyncio.ensure_future(reader(call, sent, ks, {})))
            for key in ks:
                req = rpc.WatchRequest(create_request=rpc.WatchCreateRequest(key=key))
                sent.append(mono())
                await call.write(req.SerializeToString())

        start_c = await runner.start_together(barrier)
        if n_streams == 0:
            all_created.set()
        try:
            await asyncio.wait_for(asyncio.gather(*(open_and_create(s) for s in range(s_lo, s_hi))),
                                   a.timeout)
            await asyncio.wait_for(all_created.wait(), a.timeout)
        except asyncio.TimeoutError:
            errors[f"watchers not created within {a.timeout}s"] += m * n_streams - len(create_lats)
        end_c = mono()
        await barrier_wait(barrier)

        # events phase: puts from this worker's clients, events from all workers' puts
        start_e = (mono(), runner._cpu_secs())
        put_calls = [c.unary_unary(PUT_METHOD, request_serializer=None, response_deserializer=None)
                     for c in channels]
        limiter = RateLimiter(p.rate) if p.rate > 0 else None
        nxt, hi = p.lo, p.hi
        puts_ok = 0
        pad = self.pad
        table = self.key_table

        async def putter(ci: int) -> None:
            nonlocal nxt, puts_ok
            call = put_calls[ci % len(put_calls)]
            while nxt < hi:
                i = nxt
                nxt = i + 1
                if limiter is not None:
                    await limiter.wait()
                req = rpc.PutRequest(key=table[i % nkeys], value=_TS.pack(mono()) + pad)
                try:
                    await call(req.SerializeToString())
                    puts_ok += 1
                except Exception as e:  # noqa: BLE001
                    errors[error_key(e)] += 1

        await asyncio.gather(*(putter(ci) for ci in range(p.clients)))
        try:
            await asyncio.wait_for(all_events.wait(), a.timeout)
        except asyncio.TimeoutError:
            pass
        if got < need:
            errors["watch events missing"] += need - got
        out = runner.worker_result(start_e, [event_lats], errors)
        closing = True
        for c in calls:
            c.cancel()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        out.update(watchers=len(create_lats), create_lats=create_lats.tobytes(),
                   create_start=start_c[0], create_end=end_c, puts=puts_ok, events_expected=need)
        return out


def build(args) -> WatchWorkload:
    return WatchWorkload(args)


def run(args) -> report.Stats:
    plans = runner.plan(__name__, args, args.total)
    lo = 0
    for p, n in zip(plans, runner.split(args.streams, len(plans))):
        p.args["stream_lo"], p.args["stream_hi"] = lo, lo + n
        lo += n
    results = run_plans(plans)
    st = runner._merge(results, len(plans))
    clats = report.merge_latencies(r["create_lats"] for r in results)
    ctime = max(r["create_end"] for r in results) - min(r["create_start"] for r in results)
    watchers = sum(r["watchers"] for r in results)
    st.extra.update({
        "watchers": watchers,
        "watchers_expected": args.streams * args.watch_per_stream,
        "create_secs": ctime,
        "watchers_per_sec": watchers / ctime if ctime > 0 else 0.0,
        "create_percentiles_secs": pct_json(clats),
        "puts": sum(r["puts"] for r in results),
        "events": st.count,
        "events_expected": sum(r["events_expected"] for r in results),
        "events_per_sec": st.rps,
    })
    return st


def format_text(st: report.Stats) -> str:
    e = st.extra
    cp = e.get("create_percentiles_secs", {})
    lines = ["", "Watch creation summary:",
             f"  Watchers:\t{e['watchers']} of {e['watchers_expected']}",
             f"  Total:\t{e['create_secs']:.4f} secs.",
             f"  Watchers/sec:\t{e['watchers_per_sec']:.4f}"]
    for k in ("p50", "p90", "p99"):
        if k in cp:
            lines.append(f"  {k[1:]}% created in {cp[k]:.4f} secs.")
    lines += ["", "Watch events received summary:",
              f"  Puts:\t{e['puts']}",
              f"  Events:\t{e['events']} of {e['events_expected']}",
              f"  Events/sec:\t{e['events_per_sec']:.4f}",
              "  (the report above times each event from its put being sent)"]
    return "\n".join(lines) + "\n"
