"""check perf (rate-limited write load with etcdctl's pass/fail criteria) and check datascale
(argument and prefix checks only: the memory measurement is not implemented)."""
from __future__ import annotations

import os
import statistics
import sys
import threading
import time

from pyetcd.cli.base import EXIT_BAD_FEATURE, EXIT_ERROR, EXIT_INVALID_INPUT, CliExit, fail
from pyetcd.cli.printer_simple import range_end_prefix

# load -> (writes/s limit, clients, seconds), as etcdctl 3.5
PERF_LOADS = {"s": (150, 50, 60), "m": (1000, 200, 60), "l": (8000, 500, 60), "xl": (15000, 1000, 60)}
DATASCALE_LOADS = {"s": 10000, "m": 100000, "l": 1000000, "xl": 3000000}


def _rpc():
    from pyetcd._pb.etcdserverpb import rpc_pb2
    return rpc_pb2


def _check_prefix_empty(c, prefix: str, quoted_cmd: bool = True):
    rpc = _rpc()
    p = prefix.encode()
    resp = c.call("Range", rpc.RangeRequest(key=p, range_end=range_end_prefix(p), count_only=True))
    if resp.count > 0:
        cmd = f"etcdctl del --prefix {prefix}"
        if quoted_cmd:
            cmd = f"'{cmd}'"
        fail(EXIT_INVALID_INPUT, f'prefix "{prefix}" has keys. Delete with {cmd} first')


def perf_cmd(ctx):
    load = ctx.flags["load"]
    if load not in PERF_LOADS:
        fail(EXIT_BAD_FEATURE, f"unknown load option {load}")
    limit, clients, duration = PERF_LOADS[load]
    duration = float(os.environ.get("PYETCDCTL_CHECK_PERF_SECONDS", duration))
    c = ctx.client()
    prefix = ctx.flags["prefix"]
    _check_prefix_empty(c, prefix)
    rpc = _rpc()
    c._h2_ok = False  # many threads share the client: use grpcio's thread-safe channel
    lat: list = []
    errors: dict = {}
    lock = threading.Lock()
    deadline = time.monotonic() + duration
    interval = 1.0 / limit
    next_slot = [time.monotonic()]
    value = os.urandom(512).hex().encode()[:1024]

    def worker():
        while True:
            with lock:
                slot = next_slot[0]
                next_slot[0] += interval
            if slot >= deadline:
                return
            pause = slot - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            key = prefix.encode() + os.urandom(128).hex().encode()
            t0 = time.monotonic()
            try:
                c.call("Put", rpc.PutRequest(key=key, value=value))
                with lock:
                    lat.append(time.monotonic() - t0)
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors[str(e)] = errors.get(str(e), 0) + 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(clients, 64))]
    start = time.monotonic()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        if sys.stderr.isatty():
            el = min(time.monotonic() - start, duration)
            sys.stderr.write(f"\r {int(el)} / {int(duration)} {100 * el / duration:6.2f}%")
        time.sleep(0.5)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    took = time.monotonic() - start
    p = prefix.encode()
    c.call("DeleteRange", rpc.DeleteRangeRequest(key=p, range_end=range_end_prefix(p)))
    if ctx.flags["auto-compact"]:
        rev = c.call("Range", rpc.RangeRequest(key=b"a")).header.revision
        c.call("Compact", rpc.CompactionRequest(revision=rev, physical=True))
    if ctx.flags["auto-defrag"]:
        c.call("Defragment", rpc.DefragmentRequest())
    ok = True
    if errors:
        print("FAIL: too many errors")
        for k, v in errors.items():
            print(f"FAIL: ERROR({k}) -> {v}")
        ok = False
    rps = len(lat) / took if took > 0 else 0.0
    if rps / limit <= 0.9:
        print(f"FAIL: Throughput too low: {int(rps) + 1} writes/s")
        ok = False
    else:
        print(f"PASS: Throughput is {int(rps) + 1} writes/s")
    slowest = max(lat) if lat else 0.0
    if slowest > 0.5:
        print(f"FAIL: Slowest request took too long: {slowest:f}s")
        ok = False
    else:
        print(f"PASS: Slowest request took {slowest:f}s")
    sd = statistics.pstdev(lat) if len(lat) > 1 else 0.0
    if sd > 0.1:
        print(f"FAIL: Stddev too high: {sd:f}s")
        ok = False
    else:
        print(f"PASS: Stddev is {sd:f}s")
    print("PASS" if ok else "FAIL")
    if not ok:
        raise CliExit(EXIT_ERROR)


def datascale_cmd(ctx):
    load = ctx.flags["load"]
    if load not in DATASCALE_LOADS:
        fail(EXIT_BAD_FEATURE, f"unknown load option {load}")
    c = ctx.client()
    _check_prefix_empty(c, ctx.flags["prefix"], quoted_cmd=False)
    fail(EXIT_BAD_FEATURE, "check datascale (server memory measurement) is not implemented in pyetcdctl")
