"""Percentile, histogram and summary math of the report, on inputs with known answers."""
import json
import math
from array import array

import pytest

from pyetcd.benchtool import report


def test_percentile_nearest_rank_on_1_to_100():
    s = [float(i) for i in range(1, 101)]
    assert report.percentile(s, 10) == 10.0
    assert report.percentile(s, 50) == 50.0
    assert report.percentile(s, 90) == 90.0
    assert report.percentile(s, 99) == 99.0
    assert report.percentile(s, 99.9) == 100.0
    assert report.percentile(s, 100) == 100.0
    assert report.percentile(s, 0) == 1.0


def test_percentile_small_samples():
    assert report.percentile([7.0], 50) == 7.0
    assert report.percentile([7.0], 99.9) == 7.0
    # 4 samples: p50 is the 2nd (ceil(2.0)), p51 the 3rd, p75 the 3rd, p76 the 4th.
    s = [1.0, 2.0, 3.0, 4.0]
    assert [report.percentile(s, p) for p in (25, 50, 51, 75, 76)] == [1.0, 2.0, 3.0, 3.0, 4.0]


def test_percentile_rejects_bad_input():
    with pytest.raises(ValueError):
        report.percentile([], 50)
    with pytest.raises(ValueError):
        report.percentile([1.0], 101)


def test_histogram_equal_width_bins_and_counts():
    s = [float(i) for i in range(11)]  # 0..10: bounds 0,1,...,9 and the slowest, 10
    h = report.histogram(s, buckets=10)
    assert [b for b, _ in h] == pytest.approx([float(i) for i in range(11)])
    assert [c for _, c in h] == [1] * 11


def test_histogram_skewed_counts_sum_to_n():
    s = sorted([0.001] * 90 + [0.0015] * 5 + [0.010] * 5)
    h = report.histogram(s)
    assert sum(c for _, c in h) == 100
    assert h[0] == (0.001, 90)           # the fastest bin holds all samples equal to it
    assert h[-1] == (0.010, 5)           # the last bin is the slowest
    # bin width is (0.010-0.001)/10: 0.0015 lands in the second bin, bounded by 0.0019
    assert h[1][1] == 5 and h[1][0] == pytest.approx(0.0019)


def test_histogram_all_equal_samples():
    h = report.histogram([0.5] * 7)
    assert sum(c for _, c in h) == 7
    assert h[0] == (0.5, 7)


def test_compute_summary_fields():
    lats = array("d", [0.001, 0.002, 0.003, 0.004])
    st = report.compute(lats, total_time=2.0, errors={"boom": 3}, client_cpu=1.0, procs=2)
    assert st.count == 4 and st.errors == 3
    assert st.fastest == 0.001 and st.slowest == 0.004
    assert st.average == pytest.approx(0.0025)
    assert st.stddev == pytest.approx(math.sqrt(1.25e-6))  # population stddev
    assert st.rps == pytest.approx(2.0)
    assert st.percentiles[50] == 0.002
    assert st.client_cpu_util == pytest.approx(0.5)
    j = st.to_json()
    json.dumps(j)
    assert j["percentiles_secs"]["p50"] == 0.002 and j["percentiles_secs"]["p99.9"] == 0.004
    assert sum(h["count"] for h in j["histogram"]) == 4
    assert j["error_distribution"] == {"boom": 3}


def test_compute_no_successes():
    st = report.compute([], total_time=1.0, errors={"x": 2})
    assert st.count == 0 and st.errors == 2 and st.histogram == [] and st.rps == 0
    text = report.format_text(st)
    assert "Error distribution:" in text and "[2]\tx" in text


def test_merge_latencies_from_arrays_and_bytes():
    a = array("d", [0.1, 0.2])
    b = array("d", [0.3]).tobytes()
    assert list(report.merge_latencies([a, b, []])) == [0.1, 0.2, 0.3]


def test_format_text_sections_like_etcd():
    st = report.compute([0.001 * i for i in range(1, 201)], total_time=1.0)
    text = report.format_text(st)
    for needle in ("Summary:", "  Total:\t1.0000 secs.", "  Slowest:\t0.2000 secs.",
                   "  Fastest:\t0.0010 secs.", "  Requests/sec:\t200.0000",
                   "Response time histogram:", "Latency distribution:", "  50% in 0.1000 secs.",
                   "  99.9% in 0.2000 secs."):
        assert needle in text
    hist_lines = text.split("Response time histogram:\n")[1].split("\n\n")[0].splitlines()
    assert len(hist_lines) == 11
    assert sum(int(l.split("[")[1].split("]")[0]) for l in hist_lines) == 200
