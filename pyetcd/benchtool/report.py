"""Latency statistics and the printed report, in the shape of etcd's benchmark tool.

Latencies are seconds (floats). The math is deliberately exact rather than approximated
with HDR buckets: a run records one float per request (8 bytes), so even a million requests
cost 8 MB, and workers ship their raw arrays to the parent, which merges them by
concatenation. Merging therefore loses nothing and percentiles are computed on all samples.

Percentiles use the nearest-rank definition: the p-th percentile of n sorted samples is the
smallest sample such that at least p% of the samples are <= it, i.e. ``sorted[ceil(p/100*n)-1]``
(and the minimum for p == 0).

The histogram has ``buckets`` equal-width bins between the fastest and the slowest request
plus a final bin at the slowest, as etcd's report prints it: each line shows a bin's upper
bound and the number of requests whose latency is > the previous bound and <= this one, so
the counts always sum to the number of successful requests.
"""
from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass, field

PERCENTILES = (10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9)
HISTOGRAM_BUCKETS = 10
_BAR_CHAR = "\u220e"  # etcd's bar character
_BAR_WIDTH = 40


def percentile(sorted_lats, p: float) -> float:
    """Nearest-rank percentile of already-sorted samples (0 < p <= 100)."""
    n = len(sorted_lats)
    if n == 0:
        raise ValueError("percentile of no samples")
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile {p} out of range")
    rank = math.ceil(p / 100.0 * n)
    return sorted_lats[max(rank, 1) - 1]


def histogram(sorted_lats, buckets: int = HISTOGRAM_BUCKETS) -> list[tuple[float, int]]:
    """[(upper bound, count)] with ``buckets`` equal-width bins from fastest plus one at slowest.

    The first bound is the fastest sample itself (it counts the samples equal to it); the last
    is the slowest, so every sample lands in exactly one bin.
    """
    n = len(sorted_lats)
    if n == 0:
        return []
    lo, hi = sorted_lats[0], sorted_lats[-1]
    width = (hi - lo) / buckets
    bounds = [lo + width * i for i in range(buckets)] + [hi]
    counts = [0] * len(bounds)
    b = 0
    for x in sorted_lats:
        while x > bounds[b] and b < len(bounds) - 1:
            b += 1
        counts[b] += 1
    return list(zip(bounds, counts))


@dataclass
class Stats:
    """The summary of one run. ``total_time`` is wall time from the first request to the last."""

    count: int
    errors: int
    total_time: float
    fastest: float
    slowest: float
    average: float
    stddev: float
    rps: float
    percentiles: dict[float, float]
    histogram: list[tuple[float, int]]
    error_dist: dict[str, int] = field(default_factory=dict)
    client_cpu: float | None = None  # CPU seconds used by the load generator's processes
    procs: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def client_cpu_util(self) -> float | None:
        """Client CPU seconds per wall second (1.0 = one core busy)."""
        if self.client_cpu is None or self.total_time <= 0:
            return None
        return self.client_cpu / self.total_time

    def to_json(self) -> dict:
        return {
            "count": self.count,
            "errors": self.errors,
            "total_secs": self.total_time,
            "requests_per_sec": self.rps,
            "fastest_secs": self.fastest,
            "slowest_secs": self.slowest,
            "average_secs": self.average,
            "stddev_secs": self.stddev,
            "percentiles_secs": {_pct_key(p): v for p, v in self.percentiles.items()},
            "histogram": [{"le_secs": b, "count": c} for b, c in self.histogram],
            "error_distribution": dict(self.error_dist),
            "client_cpu_secs": self.client_cpu,
            "client_cpu_util": self.client_cpu_util,
            "procs": self.procs,
            **self.extra,
        }


def _pct_key(p: float) -> str:
    return f"p{p:g}"


def compute(lats, total_time: float, errors: Counter | dict | None = None,
            client_cpu: float | None = None, procs: int = 1) -> Stats:
    """Summarise latencies (any float sequence; an ``array('d')`` is cheapest) of one run."""
    s = sorted(lats)
    n = len(s)
    errors = Counter(errors or {})
    nerr = sum(errors.values())
    if n:
        mean = math.fsum(s) / n
        var = math.fsum((x - mean) ** 2 for x in s) / n
        pct = {p: percentile(s, p) for p in PERCENTILES}
        fastest, slowest = s[0], s[-1]
    else:
        mean = var = fastest = slowest = 0.0
        pct = {}
    rps = n / total_time if total_time > 0 else 0.0
    return Stats(count=n, errors=nerr, total_time=total_time, fastest=fastest, slowest=slowest,
                 average=mean, stddev=math.sqrt(var), rps=rps, percentiles=pct,
                 histogram=histogram(s), error_dist=dict(errors), client_cpu=client_cpu,
                 procs=procs)


def merge_latencies(chunks) -> array:
    """Concatenate latency arrays (or raw ``array('d')`` bytes) from several clients/workers."""
    out = array("d")
    for c in chunks:
        if isinstance(c, (bytes, bytearray, memoryview)):
            out.frombytes(bytes(c))
        else:
            out.extend(c)
    return out


def format_text(st: Stats) -> str:
    """Human-readable report; the first three sections match etcd's benchmark output."""
    lines = ["", "Summary:",
             f"  Total:\t{st.total_time:.4f} secs.",
             f"  Slowest:\t{st.slowest:.4f} secs.",
             f"  Fastest:\t{st.fastest:.4f} secs.",
             f"  Average:\t{st.average:.4f} secs.",
             f"  Stddev:\t{st.stddev:.4f} secs.",
             f"  Requests/sec:\t{st.rps:.4f}"]
    if st.client_cpu_util is not None:
        lines.append(f"  Client CPU:\t{st.client_cpu_util * 100:.0f}% of one core "
                     f"({st.procs} process{'es' if st.procs != 1 else ''})")
    if st.histogram:
        lines += ["", "Response time histogram:"]
        top = max(c for _, c in st.histogram) or 1
        for bound, c in st.histogram:
            lines.append(f"  {bound:.4f} [{c}]\t|{_BAR_CHAR * (c * _BAR_WIDTH // top)}")
    if st.percentiles:
        lines += ["", "Latency distribution:"]
        for p, v in st.percentiles.items():
            lines.append(f"  {p:g}% in {v:.4f} secs.")
    if st.error_dist:
        lines += ["", "Error distribution:"]
        for msg, c in sorted(st.error_dist.items(), key=lambda kv: -kv[1]):
            lines.append(f"  [{c}]\t{msg}")
    return "\n".join(lines) + "\n"
