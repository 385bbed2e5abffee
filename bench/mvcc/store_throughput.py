"""Throughput of the MVCC store alone (no server, no raft): puts/s, ranges/s, restore, compact, hash.

    python bench/mvcc/store_throughput.py [--keys 10000] [--puts 100000] [--repeat 3]

Times are whole-run totals (commits of the backend batch included), reported as the median of
--repeat runs, as wall-clock and as process CPU time (CPU time is the steadier figure on a
shared machine). Both key-index builds run: "native" (native/mvcc_index.pyx) and "py".
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

from pyetcd.storage.backend import Backend
from pyetcd.storage.mvcc import KVStore
from pyetcd.storage.mvcc.index import NativeTreeIndex, PyTreeIndex


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def one_run(impl, factory, nkeys, nputs, tmp):
    keys = [b"/registry/pods/default/pod-%06d" % i for i in range(nkeys)]
    value = b"x" * 256
    path = os.path.join(tmp, f"db-{impl}")
    s = KVStore(Backend(path), index_factory=factory)
    out = {}

    def load():
        for k in keys:
            tw = s.write()
            tw.put(k, value, prev=False)
            tw.end()
    out["put (new keys)"] = (nkeys,) + timed(load)

    def puts(prev):
        def run():
            for i in range(nputs):
                tw = s.write()
                tw.put(keys[i % nkeys], value, prev=prev)
                tw.end()
            s.be.force_commit()
        return run
    out["put (update, no prev)"] = (nputs,) + timed(puts(False))
    out["put (update, returns prev)"] = (nputs,) + timed(puts(True))

    def txn10():
        for i in range(0, nputs, 10):
            tw = s.write()
            for j in range(10):
                tw.put(keys[(i + j) % nkeys], value, prev=False)
            tw.end()
        s.be.force_commit()
    out["put (10 per txn)"] = (nputs,) + timed(txn10)

    n = min(nputs, 50000)

    def gets():
        for i in range(n):
            s.range(keys[(i * 7) % nkeys])
    out["range 1 key"] = (n,) + timed(gets)
    s._cache.clear()
    s._cache_used = 0
    s.cache_bytes = 0

    def gets_nocache():
        for i in range(n):
            s.range(keys[(i * 7) % nkeys])
    out["range 1 key (no value cache)"] = (n,) + timed(gets_nocache)
    s.cache_bytes = 64 << 20
    r = max(1, min(200, nkeys // 1000))
    span = min(1000, nkeys)

    def ranges():
        for i in range(r * 5):
            s.range(keys[0], keys[span - 1] + b"\x00")
    out[f"range {span} keys"] = (r * 5,) + timed(ranges)

    def count():
        for i in range(20):
            s.range(b"\x00", b"\x00", count_only=True)
    out[f"count {nkeys} keys"] = (20,) + timed(count)

    def hash_():
        s.hash_kv()
    out[f"hash_kv ({s.rev - 1} revisions)"] = (1,) + timed(hash_)
    revs = s.rev - 1
    s.be.close()

    holder = {}

    def restore():
        holder["s"] = KVStore(Backend(path), index_factory=factory)
    out[f"restore ({revs} revisions)"] = (1,) + timed(restore)
    s = holder["s"]

    def compact():
        s.compact(s.rev - nkeys)
    out["compact (drop ~all history)"] = (1,) + timed(compact)
    s.be.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--puts", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    impls = [("native", NativeTreeIndex), ("py", PyTreeIndex)] if NativeTreeIndex else [("py", PyTreeIndex)]
    results = {}
    for rep in range(a.repeat):
        for impl, factory in impls:
            tmp = tempfile.mkdtemp(prefix="mvcc-bench-")
            try:
                for name, (n, wall, cpu) in one_run(impl, factory, a.keys, a.puts, tmp).items():
                    results.setdefault((name, impl), []).append((n, wall, cpu))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    print(f"keys={a.keys} puts={a.puts} repeat={a.repeat} (medians)")
    print(f"| {'operation':34} | {'index':6} | {'ops/s (wall)':>12} | {'ops/s (cpu)':>12} | {'us/op (cpu)':>11} |")
    print(f"|{'-' * 36}|{'-' * 8}|{'-' * 14}|{'-' * 14}|{'-' * 13}|")
    for (name, impl), runs in results.items():
        n = runs[0][0]
        wall = statistics.median(r[1] for r in runs)
        cpu = statistics.median(r[2] for r in runs)
        print(f"| {name:34} | {impl:6} | {n / wall:12,.0f} | {n / cpu:12,.0f} | {cpu / n * 1e6:11.1f} |")


if __name__ == "__main__":
    main()
