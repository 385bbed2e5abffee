"""Microbenchmark of the watchable store (not a test; run `python tests/watch/bench_watch.py`).

Prints medians (CPU time of this process, robust on a shared machine) of: notify() cost per write txn with N single-key / range watchers; interval
stabbing vs a linear scan of the ranges; catch-up throughput (events/s) of sync_watchers over a
backlog. Numbers go in the report; DESIGN.md: quote medians, never assert them in a test.
"""
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from storeutil import Source  # noqa: E402

from pyetcd.watch import IntervalIndex, WatchStream  # noqa: E402


def _median(fn, runs=5):
    return statistics.median(fn() for _ in range(runs))


def notify_us(n_key, n_range, writes=3000):
    with tempfile.TemporaryDirectory() as d:
        src = Source(d + "/db")
        ws = WatchStream(src.store, capacity=10**9)
        rnd = random.Random(1)
        for _ in range(n_key):
            ws.watch(0, b"key/%06d" % rnd.randrange(100000), None, 0)
        for _ in range(n_range):
            p = b"key/%04d" % rnd.randrange(1000)   # each prefix covers 100 of the keys written
            ws.watch(0, p, p + b"\xff", 0)
        evs = [src.kv.put(b"key/%06d" % rnd.randrange(100000), b"v")[1] for _ in range(writes)]

        def run():
            t = time.process_time()
            for e in evs:
                src.store.notify(e)
            dt = time.process_time() - t
            ws._q.clear()
            ws._data = 0
            return dt / len(evs) * 1e6
        r = _median(run)
        src.close()
        return r


def stab_us(n):
    rnd = random.Random(2)
    idx, ivs = IntervalIndex(1), []
    for _ in range(n):
        p = b"key/%05d" % rnd.randrange(100000)
        idx.insert(p, p + b"\xff", 1)
        ivs.append((p, p + b"\xff"))
    keys = [b"key/%06d" % rnd.randrange(1000000) for _ in range(2000)]

    def tree():
        t = time.process_time()
        for k in keys:
            idx.stab(k)
        return (time.process_time() - t) / len(keys) * 1e6

    def scan():
        t = time.process_time()
        for k in keys[:200]:
            [v for v in ivs if v[0] <= k < v[1]]
        return (time.process_time() - t) / 200 * 1e6
    return _median(tree), _median(scan, 3)


def catch_up_events_per_s(backlog=20000, value=100):
    with tempfile.TemporaryDirectory() as d:
        src = Source(d + "/db")
        for i in range(backlog):
            src.kv.put(b"k/%d" % (i % 1000), b"x" * value)
        src.kv.be.force_commit()

        def run():
            ws = WatchStream(src.store, capacity=10**9)
            ws.watch(0, b"k/", b"k0", 1)
            t = time.process_time()
            while src.store.unsynced.watchers:
                src.store.sync_watchers()
            dt = time.process_time() - t
            ws.close()
            return backlog / dt
        r = _median(run, 3)
        src.close()
        return r


if __name__ == "__main__":
    for nk, nr in [(0, 0), (1, 0), (1000, 0), (10000, 0), (0, 100), (0, 1000), (0, 10000)]:
        print(f"notify, {nk:5d} key + {nr:5d} range watchers: {notify_us(nk, nr):8.2f} us/txn (median)")
    for n in (100, 1000, 10000):
        t, s = stab_us(n)
        print(f"stab over {n:5d} ranges: interval index {t:6.1f} us, linear scan {s:8.1f} us")
    print(f"catch-up from history: {catch_up_events_per_s():,.0f} events/s (one watcher, 100-byte values)")
