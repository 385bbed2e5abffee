"""Measure the Raft core's commit throughput and the Cython speed-ups; print a table.

    python bench/raft/run.py            # native (if built) and pure Python, side by side

Figures are measured, never asserted. Quote medians.
"""
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)


def _median_rate(fn, n_items, repeats=5):
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        rates.append(n_items / (time.perf_counter() - t))
    return statistics.median(rates)


def throughput():
    """Entries/s committed and applied on all 3 nodes, for several proposal patterns."""
    from cluster import Cluster
    from pyetcd.raft import types
    out = {"native": types.NATIVE_ENTRY}
    payload = b"x" * 128
    for batch in (1000, 100):
        c = Cluster()
        datas = [payload] * batch
        rounds = max(1, 20000 // batch)

        def go():
            for _ in range(rounds):
                c.commit_batch(datas)
            c.compact()
        go()  # warm up
        out["batch%d" % batch] = _median_rate(go, rounds * batch)
    c = Cluster()
    datas = [payload] * 100

    def one():
        for _ in range(50):
            c.commit_one_by_one(datas)
        c.compact()
    one()
    out["single_propose_x100"] = _median_rate(one, 5000)
    return out


def micro():
    """Per-operation cost of each hot path, native vs plain-Python reference."""
    import random
    from pyetcd.raft import log as rlog, quorum, tracker, types
    res = {}
    rng = random.Random(1)

    def timeit(fn, n=20000, repeats=5):
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn(n)
            ts.append((time.perf_counter() - t) / n * 1e9)
        return statistics.median(ts)

    matches = [rng.randrange(1000) for _ in range(5)]

    def q(fn):
        def run(n):
            for _ in range(n):
                fn(matches)
        return run
    res["majority_committed_5"] = (timeit(q(quorum.majority_committed)),
                                   timeit(q(quorum.py_majority_committed)))

    def inf(cls):
        def run(n):
            f = cls(256)
            for i in range(n):
                f.add(i)
                if f.full():
                    f.free_le(i - 8)
        return run
    res["inflights_add_free"] = (timeit(inf(tracker.Inflights)), timeit(inf(tracker.PyInflights)))

    def unstable(ucls, ecls):
        def run(n):
            u = ucls(1)
            idx = 1
            for _ in range(n // 10):
                u.truncate_and_append([ecls(1, idx + k) for k in range(10)])
                idx += 10
                for k in range(10):
                    u.maybe_term(idx - 1 - k)
                u.slice(idx - 10, idx)
                u.stable_to(idx - 1, 1)
        return run
    res["unstable_append_term_slice_stable(per entry)"] = (
        timeit(unstable(rlog.Unstable, types.Entry)),
        timeit(unstable(rlog.PyUnstable, types._PyEntry)))

    e_nat = types.Entry(5, 123456, 0, b"y" * 100)
    e_py = types._PyEntry(5, 123456, 0, b"y" * 100)
    wire = types._py_encode_entry(e_py)

    def enc(fn, e):
        def run(n):
            for _ in range(n):
                fn(e)
        return run
    res["encode_entry (vs protobuf)"] = (timeit(enc(types.encode_entry, e_nat)),
                                         timeit(enc(types._py_encode_entry, e_py)))
    res["decode_entry (vs protobuf)"] = (timeit(enc(types.decode_entry, wire)),
                                         timeit(enc(types._py_decode_entry, wire)))
    ents_n = [types.Entry(1, i, 0, b"z" * 64) for i in range(64)]
    ents_p = [types._PyEntry(1, i, 0, b"z" * 64) for i in range(64)]

    def lim(fn, ents):
        def run(n):
            for _ in range(n // 64):
                fn(ents, 1 << 20)
        return run
    res["limit_size(per entry)"] = (timeit(lim(types.limit_size, ents_n)),
                                    timeit(lim(types._py_limit_size, ents_p)))
    return res


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(throughput()))
        return
    results = {}
    for mode, env in (("native", {}), ("pure", {"PYETCD_RAFT_PURE": "1"})):
        p = subprocess.run([sys.executable, __file__, "--child"], capture_output=True, text=True,
                           env={**os.environ, **env}, check=True)
        results[mode] = json.loads(p.stdout.strip().splitlines()[-1])
    print("3-node core, no I/O: entries committed+applied per second (median of 5)")
    print("%-24s %12s %12s %8s" % ("pattern", "native", "pure", "ratio"))
    for k in ("batch1000", "batch100", "single_propose_x100"):
        a, b = results["native"][k], results["pure"][k]
        print("%-24s %12.0f %12.0f %7.2fx" % (k, a, b, a / b))
    print("native modules loaded in native run: %s" % results["native"]["native"])
    print()
    print("hot paths: ns per operation (median of 5)")
    print("%-46s %10s %10s %8s" % ("operation", "native", "python", "speedup"))
    for k, (a, b) in micro().items():
        print("%-46s %10.1f %10.1f %7.1fx" % (k, a, b, b / a))


if __name__ == "__main__":
    main()
