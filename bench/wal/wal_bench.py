"""WAL throughput: appends/s and MB/s with sync on and off, replay speed, raw fdatasync baseline.

usage: python bench/wal/wal_bench.py [--dir DIR] [--seconds S] [--repeat N]

Each configuration runs for about S seconds, N times; the median is printed. Numbers are
measured, never asserted: paste them into bench/wal/README.md with the machine's description.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from pyetcd.pb import raftpb  # noqa: E402
from pyetcd.wal import WAL  # noqa: E402


def raw_fdatasync(d, seconds, size):
    """Baseline: append ``size`` bytes + fdatasync in a loop with no framing at all."""
    path = os.path.join(d, "raw")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    data = b"x" * size
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        os.write(fd, data)
        os.fdatasync(fd)
        n += 1
    el = time.perf_counter() - t0
    os.close(fd)
    os.unlink(path)
    return n / el


def appends(d, seconds, *, batch, size, sync, prealloc):
    wd = os.path.join(d, "wal")
    w = WAL.create(wd, b"bench", preallocate_segments=prealloc)
    data = os.urandom(size)
    index = 0
    saves = 0
    hs = raftpb.HardState(term=1, vote=1)
    c0 = time.process_time()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        ents = [raftpb.Entry(Term=1, Index=index + k + 1, Data=data) for k in range(batch)]
        index += batch
        hs.commit = index
        w.save(hs, ents, sync=sync)
        saves += 1
    w.sync()
    el = time.perf_counter() - t0
    cpu = time.process_time() - c0
    w.close()
    shutil.rmtree(wd)
    # CPU us per entry includes building the Entry objects, as a caller would.
    return index / el, saves / el, index * size / el / 1e6, cpu / index * 1e6


def replay(d, entries, size):
    wd = os.path.join(d, "wal")
    w = WAL.create(wd, b"bench")
    data = os.urandom(size)
    for start in range(1, entries + 1, 1000):
        w.save(raftpb.HardState(term=1, commit=start),
               [raftpb.Entry(Term=1, Index=i, Data=data) for i in range(start, min(start + 1000, entries + 1))],
               sync=False)
    w.close()
    c0 = time.process_time()
    t0 = time.perf_counter()
    w, rs = WAL.open(wd)
    el = time.perf_counter() - t0
    cpu = time.process_time() - c0
    assert len(rs.entries) == entries
    w.close()
    shutil.rmtree(wd)
    return entries / el, entries * size / el / 1e6, cpu / entries * 1e6


def median_of(fn, repeat):
    runs = [fn() for _ in range(repeat)]
    if isinstance(runs[0], tuple):
        return tuple(statistics.median(r[i] for r in runs) for i in range(len(runs[0])))
    return statistics.median(runs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir on the current disk)")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="walbench-", dir=args.dir or os.getcwd())
    try:
        print("dir: %s  seconds/run: %.1f  repeat: %d (medians)" % (d, args.seconds, args.repeat))
        print("raw write+fdatasync of 128 B: %.0f /s" % median_of(
            lambda: raw_fdatasync(d, args.seconds, 128), args.repeat))
        print()
        print("%-6s %-6s %-5s %-8s | %12s %10s %8s %12s" % ("batch", "size", "sync", "prealloc",
                                                            "entries/s", "saves/s", "MB/s", "cpu us/ent"))
        for sync in (True, False):
            for batch, size in ((1, 128), (10, 128), (100, 128), (1, 1024), (100, 1024), (10, 65536)):
                for prealloc in ((True, False) if sync else (True,)):
                    e, s, mb, cpu = median_of(lambda: appends(d, args.seconds, batch=batch, size=size,
                                                              sync=sync, prealloc=prealloc), args.repeat)
                    print("%-6d %-6d %-5s %-8s | %12.0f %10.0f %8.1f %12.2f"
                          % (batch, size, sync, prealloc, e, s, mb, cpu))
        print()
        for n, size in ((100000, 128), (20000, 4096)):
            e, mb, cpu = median_of(lambda: replay(d, n, size), args.repeat)
            print("replay %d entries of %d B: %.0f entries/s, %.1f MB/s, %.2f cpu us/entry"
                  % (n, size, e, mb, cpu))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
