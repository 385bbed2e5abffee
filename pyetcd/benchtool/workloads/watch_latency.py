"""`watch-latency`: how long a put takes to reach its watchers, as etcd's `benchmark watch-latency`.

--clients watchers (one stream each, over --conns connections) watch one key. A separate
connection puts that key --put-total times at --put-rate per second, one put at a time: the
next put goes out only when every watcher has received the previous one (or --timeout passed),
so each sample is measured on an otherwise idle server. A sample is the time from the put
being sent to one watcher receiving its event, so a run yields put_total × clients samples.
(etcd's tool starts the clock when the put's response arrives; starting at send also counts
the commit, which is what a watcher waits for.)

Runs in one process: the watchers are cheap, and the putter must see every receipt.
"""
from __future__ import annotations

import asyncio
import struct
import time
from array import array
from collections import Counter

from .. import report, runner
from . import keys
from .watch import PUT_METHOD, WATCH_METHOD, RateLimiter, error_key, open_stream, pct_json, run_plans

COMMAND = "watch-latency"
HELP = "Benchmark watch latency"

_IDX = struct.Struct("<q")


def add_arguments(p) -> None:
    p.add_argument("--put-total", dest="total", type=int, default=1000,
                   help="Total number of put requests")
    p.add_argument("--put-rate", dest="rate", type=float, default=100,
                   help="Number of keys to put per second (0 is no limit)")
    p.add_argument("--key-size", type=int, default=32, help="Key size of watch response")
    p.add_argument("--val-size", type=int, default=32,
                   help="Value size of watch response (at least 8: the put number is carried in it)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="Seconds to wait for a put's events before counting them missing")


def validate(args) -> None:
    if args.val_size < _IDX.size:
        raise ValueError(f"--val-size must be at least {_IDX.size}")
    if args.rate < 0:
        raise ValueError("--put-rate must not be negative")
    if args.key_size < 1:
        raise ValueError("--key-size must be at least 1")
    args.procs = 1  # see the module docstring


class WatchLatency:
    def __init__(self, args):
        from pyetcd.pb import rpc

        self.rpc = rpc
        self.args = args
        # A key of its own (etcd's tool uses random bytes), so other workloads' keys are not hit.
        self.key = (b"watch-latency/" + keys.random_value(max(0, args.key_size - 14)))[:args.key_size]
        self.pad = keys.random_value(args.val_size - _IDX.size)

    async def drive(self, p, channels, barrier) -> dict:
        import grpc

        a, rpc = self.args, self.rpc
        n = p.clients
        parse = rpc.WatchResponse.FromString
        perf = time.perf_counter
        errors: Counter = Counter()
        lats = array("d")
        put_lats = array("d")   # the put's own round trip, to tell commit from delivery
        first_lats = array("d")  # per put: its first watcher's event
        sent_at: dict[int, float] = {}
        pending: dict[int, int] = {}   # put number -> watchers yet to receive it
        done: dict[int, asyncio.Event] = {}
        created = 0
        all_created = asyncio.Event()
        closing = False

        async def reader(call) -> None:
            nonlocal created
            while True:
                try:
                    msg = await call.read()
                except Exception as e:  # noqa: BLE001
                    if not closing:
                        errors[error_key(e)] += 1
                    return
                now = perf()
                if not isinstance(msg, bytes):
                    if not closing:
                        errors["watch stream closed by the server"] += 1
                    return
                wr = parse(msg)
                if wr.created:
                    created += 1
                    if created == n:
                        all_created.set()
                    continue
                if wr.canceled:
                    errors[f"watch canceled: {wr.cancel_reason or 'compacted'}"] += 1
                    continue
                for ev in wr.events:
                    i = _IDX.unpack_from(ev.kv.value)[0]
                    t0 = sent_at.get(i)
                    if t0 is None or ev.kv.key != self.key:
                        errors["unexpected watch event"] += 1
                        continue
                    lats.append(now - t0)
                    left = pending[i] - 1
                    if left == n - 1:
                        first_lats.append(now - t0)
                    pending[i] = left
                    if left == 0:
                        done[i].set()

        calls = [open_stream(channels[c % len(channels)], WATCH_METHOD) for c in range(n)]
        tasks = [asyncio.ensure_future(reader(c)) for c in calls]
        req = rpc.WatchRequest(create_request=rpc.WatchCreateRequest(key=self.key)).SerializeToString()
        for c in calls:
            await c.write(req)
        await asyncio.wait_for(all_created.wait(), a.timeout)
        put_ch = grpc.aio.insecure_channel(p.endpoints[0], options=runner._CHANNEL_OPTIONS)
        put = put_ch.unary_unary(PUT_METHOD, request_serializer=None, response_deserializer=None)
        limiter = RateLimiter(p.rate) if p.rate > 0 else None
        try:
            await asyncio.wait_for(put_ch.channel_ready(), p.dial_timeout)
            start = await runner.start_together(barrier)
            for i in range(p.lo, p.hi):
                if limiter is not None:
                    await limiter.wait()
                body = rpc.PutRequest(key=self.key, value=_IDX.pack(i) + self.pad).SerializeToString()
                pending[i] = n
                done[i] = asyncio.Event()
                sent_at[i] = perf()
                try:
                    await put(body)
                except Exception as e:  # noqa: BLE001
                    errors[error_key(e)] += 1
                    continue
                put_lats.append(perf() - sent_at[i])
                try:
                    await asyncio.wait_for(done[i].wait(), a.timeout)
                except asyncio.TimeoutError:
                    errors["watch events missing"] += pending[i]
                del done[i]
            out = runner.worker_result(start, [lats], errors)
            out["put_lats"] = put_lats.tobytes()
            out["first_lats"] = first_lats.tobytes()
        finally:
            closing = True
            for c in calls:
                c.cancel()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await put_ch.close()
        return out


def build(args) -> WatchLatency:
    return WatchLatency(args)


def run(args) -> report.Stats:
    plans = runner.plan(__name__, args, args.total)   # one plan: validate() set procs to 1
    results = run_plans(plans)
    st = runner._merge(results, len(plans))
    st.extra.update({
        "watchers": args.clients, "puts": args.total, "events_expected": args.total * args.clients,
        # the put's response, and the first of its watchers' events, both timed from the send
        "put_percentiles_secs": pct_json(report.merge_latencies(r["put_lats"] for r in results)),
        "first_event_percentiles_secs": pct_json(
            report.merge_latencies(r["first_lats"] for r in results)),
    })
    return st


def format_text(st: report.Stats) -> str:
    e = st.extra
    lines = ["", "Watch latency breakdown (from the put being sent):"]
    for label, key in (("put response", "put_percentiles_secs"),
                       ("first watcher's event", "first_event_percentiles_secs")):
        pc = e.get(key, {})
        if pc:
            lines.append(f"  {label}:\t" + "  ".join(f"p{k[1:]} {pc[k]:.4f}" for k in ("p50", "p90", "p99")))
    return "\n".join(lines) + "\n"
