"""`lease-keepalive`: LeaseKeepAlive requests, as etcd's `benchmark lease-keepalive`.

Each of --clients clients grants itself a lease (TTL --ttl) before the clock starts, opens one
LeaseKeepAlive stream on its connection, and then sends keep-alive requests on it one at a
time, waiting for each answer, until --total are done over all clients. A sample is one
request-response round trip on the stream. An answer with TTL <= 0 (etcd's "lease not
found") counts as an error. The leases are revoked after the clock stops.

etcd's tool does the same with clientv3's KeepAliveOnce, which opens a stream per request;
keeping the stream is how clients keep leases alive in practice (clientv3's KeepAlive).
"""
from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter

from .. import report, runner
from .watch import RateLimiter, error_key, open_stream

COMMAND = "lease-keepalive"
HELP = "Benchmark lease keepalive"

GRANT = "/etcdserverpb.Lease/LeaseGrant"
REVOKE = "/etcdserverpb.Lease/LeaseRevoke"
KEEPALIVE = "/etcdserverpb.Lease/LeaseKeepAlive"


def add_arguments(p) -> None:
    p.add_argument("--total", type=int, default=10000, help="Total number of lease keepalive requests")
    p.add_argument("--ttl", type=int, default=100, help="TTL of the leases kept alive (seconds)")
    p.add_argument("--rate", type=float, default=0,
                   help="Maximum keep-alive requests per second (0 is no limit)")


def validate(args) -> None:
    if args.ttl < 1:
        raise ValueError("--ttl must be at least 1")


class LeaseKeepAlive:
    def __init__(self, args):
        from pyetcd.pb import rpc

        self.rpc = rpc
        self.args = args

    async def drive(self, p, channels, barrier) -> dict:
        rpc = self.rpc
        grants = [c.unary_unary(GRANT, request_serializer=None, response_deserializer=None)
                  for c in channels]
        ids = []
        for ci in range(p.clients):
            r = rpc.LeaseGrantResponse.FromString(await grants[ci % len(grants)](
                rpc.LeaseGrantRequest(TTL=self.args.ttl).SerializeToString()))
            if r.error:
                raise RuntimeError(f"lease grant failed: {r.error}")
            ids.append(r.ID)
        streams = [open_stream(channels[ci % len(channels)], KEEPALIVE) for ci in range(p.clients)]
        parse = rpc.LeaseKeepAliveResponse.FromString
        limiter = RateLimiter(p.rate) if p.rate > 0 else None
        perf = time.perf_counter
        errors: Counter = Counter()
        per_client: list[array] = []
        nxt, hi = p.lo, p.hi
        broken = set()

        async def client(ci: int) -> None:
            nonlocal nxt
            call = streams[ci]
            req = rpc.LeaseKeepAliveRequest(ID=ids[ci]).SerializeToString()
            lats = array("d")
            per_client.append(lats)
            while nxt < hi:
                nxt += 1
                if ci in broken:
                    errors["keep-alive stream broken"] += 1
                    continue
                if limiter is not None:
                    await limiter.wait()
                t0 = perf()
                try:
                    await call.write(req)
                    msg = await call.read()
                except Exception as e:  # noqa: BLE001
                    errors[error_key(e)] += 1
                    broken.add(ci)
                    continue
                if not isinstance(msg, bytes):
                    errors["keep-alive stream closed by the server"] += 1
                    broken.add(ci)
                    continue
                t1 = perf()
                if parse(msg).TTL <= 0:
                    errors["lease not found (TTL 0)"] += 1
                    continue
                lats.append(t1 - t0)

        start = await runner.start_together(barrier)
        await asyncio.gather(*(client(ci) for ci in range(p.clients)))
        out = runner.worker_result(start, per_client, errors)
        for s in streams:
            s.cancel()
        revokes = [c.unary_unary(REVOKE, request_serializer=None, response_deserializer=None)
                   for c in channels]
        for ci, lid in enumerate(ids):
            try:
                await revokes[ci % len(revokes)](rpc.LeaseRevokeRequest(ID=lid).SerializeToString())
            except Exception:  # noqa: BLE001 - clean-up only; the lease expires anyway
                pass
        return out


def build(args) -> LeaseKeepAlive:
    return LeaseKeepAlive(args)


def run(args) -> report.Stats:
    return runner.run(__name__, args, args.total)
