"""--discovery-srv scenarios for the real etcdctl and pyetcdctl, run inside a private network and
mount namespace (``unshare -rmn python discovery_ns.py <workdir>``; see test_discovery.py).

Go's resolver only asks the name servers of /etc/resolv.conf, on port 53. Inside the namespace
this script brings up ``lo``, bind-mounts its own resolv.conf over /etc/resolv.conf, serves DNS on
127.0.0.1:53 (tests/cli/fakedns.py) and starts one real etcd with a plain and a TLS client URL.
Then every case runs with both tools, and the results go to stdout as one JSON document.
Everything started here is stopped before the script ends.
"""
from __future__ import annotations

import ctypes
import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from pyetcd.testing import procs  # noqa: E402
from tests.cli.fakedns import FakeDNS  # noqa: E402

RESOLV = "nameserver 127.0.0.1\nsearch corp.test\noptions ndots:3 timeout:1 attempts:1\n"
SANS = ["m1.srv.test", "both.test", "httpsan.test", "named.test"]


def lo_up() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, req))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 0x1))  # SIOCSIFFLAGS, IFF_UP
    finally:
        s.close()


def bind_mount(src: str, dst: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(src.encode(), dst.encode(), None, 4096, None) != 0:  # MS_BIND
        raise OSError(ctypes.get_errno(), f"mount --bind {src} {dst}")


def make_certs(d: str) -> bool:
    if shutil.which("openssl") is None:
        return False

    def ossl(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=d, timeout=60)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
         "-days", "2", "-subj", "/CN=pyetcd-discovery-ca")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=m1.srv.test")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=" + ",".join(f"DNS:{n}" for n in SANS) + ",IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")
    return True


def zones(pp: int, pt: int) -> dict:
    m1 = "m1.srv.test."
    z = {
        "_etcd-client-ssl._tcp.both.test.": {"srv": [(0, 0, pt, m1)]},
        "_etcd-client._tcp.both.test.": {"srv": [(0, 0, pp, m1)]},
        "_etcd-client._tcp.httponly.test.": {"srv": [(0, 0, pp, m1)]},
        "_etcd-client._tcp.httpsan.test.": {"srv": [(0, 0, pp, m1)]},
        "_etcd-client-ssl-blue._tcp.named.test.": {"srv": [(0, 0, pt, m1)]},
        "_etcd-client-blue._tcp.named.test.": {"srv": [(0, 0, pp, m1)]},
        "_etcd-client-ssl._tcp.sf.test.": {"rcode": 2},
        "_etcd-client._tcp.sf.test.": {"rcode": 5},
        "_etcd-client-ssl._tcp.lame.test.": {"lame": True},
        "_etcd-client._tcp.lame.test.": {"lame": True},
        "_etcd-client._tcp.comp.test.": {"compressed": [(0, 0, pp, "x")]},
        # 14 records in scrambled priority order, too long for 512 bytes: TC, then TCP
        "_etcd-client._tcp.big.test.": {"srv": [((5 * i) % 14, 0, pp,
                                                 f"member-{i:02d}.a-long-label-for-truncation.srv.test.")
                                                for i in range(14)]},
        # equal priority and weight: the order Go's sort.Sort leaves them in
        "_etcd-client._tcp.ties.test.": {"srv": [(0, 0, pp, f"t{i:02d}.srv.test.") for i in range(14)]},
        "_etcd-client._tcp.prio.test.": {"srv": [(5, 0, pp, "p5.srv.test."), (1, 0, pp, "p1.srv.test."),
                                                 (3, 0, pp, "p3.srv.test."), (1, 0, pp, "p1b.srv.test.")]},
        "_etcd-client._tcp.short.corp.test.": {"srv": [(0, 0, pp, m1)]},
        "_etcd-client._tcp.dual.": {"srv": [(0, 0, pp, "dual-a1.srv.test."), (0, 0, pp, "dual-a2.srv.test.")]},
        "_etcd-client._tcp.dual.corp.test.": {"srv": [(0, 0, pp, "dual-b1.srv.test."),
                                                      (0, 0, pp, "dual-b2.srv.test.")]},
    }
    for svc in ("_etcd-client-ssl", "_etcd-client"):
        for name in ("drop.test.", "drop.test.corp.test."):
            z[f"{svc}._tcp.{name}"] = {"drop": True}
    return z


def cases(d: str, pp: int, pt: int, tls: bool) -> list:
    ca = ["--cacert", f"{d}/ca.crt"]
    snap = ["snapshot", "save", f"{d}/never-written.db"]
    out = [
        ("httponly get", ["--discovery-srv", "httponly.test", "get", "k"], None),
        ("both: endpoint list", ["--discovery-srv", "both.test", *snap], None),
        ("named: endpoint list", ["--discovery-srv", "named.test", "--discovery-srv-name", "blue", *snap], None),
        ("named without the name", ["--discovery-srv", "named.test", "get", "k"], None),
        ("nx", ["--discovery-srv", "nx.test", "get", "k"], None),
        ("nx before --write-out check", ["--discovery-srv", "nx.test", "-w", "bogus", "get", "k"], None),
        ("found, then --write-out check", ["--discovery-srv", "httponly.test", "-w", "bogus", "get", "k"], None),
        ("nx from ETCDCTL_DISCOVERY_SRV", ["get", "k"], {"ETCDCTL_DISCOVERY_SRV": "nx.test"}),
        ("rooted: servfail and refused", ["--discovery-srv", "sf.test.", "get", "k"], None),
        ("servfail, then search suffix nxdomain", ["--discovery-srv", "sf.test", "get", "k"], None),
        ("lame referral", ["--discovery-srv", "lame.test.", "get", "k"], None),
        ("compressed SRV target", ["--discovery-srv", "comp.test", "get", "k"], None),
        ("server never answers", ["--discovery-srv", "drop.test", "get", "k"], None),
        ("truncated: TCP, priority order", ["--discovery-srv", "big.test", *snap], None),
        ("ties keep Go's sort order", ["--discovery-srv", "ties.test", *snap], None),
        ("priorities", ["--discovery-srv", "prio.test", *snap], None),
        ("search domain", ["--discovery-srv", "short", "get", "k"], None),
        ("ndots: suffixed name first", ["--discovery-srv", "dual", *snap], None),
        ("invalid domain", ["--discovery-srv", "bad name", "get", "k"], None),
        ("onion", ["--discovery-srv", "x.onion", "get", "k"], None),
        ("status asks --endpoints", ["--discovery-srv", "httponly.test", "--endpoints", f"127.0.0.1:{pp}",
                                     "endpoint", "status"], None),
        ("status runs discovery", ["--discovery-srv", "nx.test", "--endpoints", f"127.0.0.1:{pp}",
                                   "endpoint", "status"], None),
        ("health does not", ["--discovery-srv", "nx.test", "--endpoints", f"127.0.0.1:{pp}",
                             "endpoint", "health"], None),
    ]
    if tls:
        out += [
            ("both get (https first: TLS)", ["--discovery-srv", "both.test", *ca, "get", "k"], None),
            ("both, unknown CA", ["--discovery-srv", "both.test", "--command-timeout", "1s", "get", "k"], None),
            ("secure only", ["--discovery-srv", "both.test", "--insecure-discovery=false", *ca, "get", "k"], None),
            ("secure only, rooted domain", ["--discovery-srv", "both.test.", "--insecure-discovery=false", *ca,
                                            "--command-timeout", "1s", "get", "k"], None),
            ("http endpoint ignores --cacert", ["--discovery-srv", "httponly.test", *ca, "get", "k"], None),
            ("http dropped, --endpoints over TLS as the domain",
             ["--discovery-srv", "httpsan.test", "--insecure-discovery=false", "--endpoints", f"127.0.0.1:{pt}",
              *ca, "get", "k"], None),
            ("http dropped, domain not in the certificate",
             ["--discovery-srv", "httponly.test", "--insecure-discovery=false", "--endpoints", f"127.0.0.1:{pt}",
              *ca, "--command-timeout", "1s", "get", "k"], None),
            ("http dropped, plain --endpoints gets TLS",
             ["--discovery-srv", "httponly.test", "--insecure-discovery=false", "--endpoints", f"127.0.0.1:{pp}",
              "--command-timeout", "1s", "get", "k"], None),
            ("status --cluster from discovered members",
             ["--discovery-srv", "httponly.test", *ca, "endpoint", "status", "--cluster"], None),
            ("status --cluster asks https members with TLS",
             ["--discovery-srv", "both.test", *ca, "endpoint", "status", "--cluster"], None),
            ("named get over TLS",
             ["--discovery-srv", "named.test", "--discovery-srv-name", "blue", *ca, "get", "k"], None),
        ]
    return out


def run(cmd: list, args: list, extra_env) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["ETCDCTL_API"] = "3"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra_env or {})
    try:
        p = subprocess.run(cmd + args, capture_output=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        return {"rc": None, "out": (e.stdout or b"").decode(errors="replace"), "err": "timed out after 60s"}
    return {"rc": p.returncode, "out": p.stdout.decode(errors="replace"), "err": p.stderr.decode(errors="replace")}


def main() -> None:
    work = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
    lo_up()
    resolv = os.path.join(work, "resolv.conf")
    with open(resolv, "w") as f:
        f.write(RESOLV)
    bind_mount(resolv, "/etc/resolv.conf")
    tls = make_certs(work)
    pp, pt, peer = procs.free_port(), procs.free_port(), procs.free_port()
    results = []
    dns = FakeDNS(zones(pp, pt), port=53).start()
    m = None
    try:
        extra = ["--cert-file", f"{work}/server.crt", "--key-file", f"{work}/server.key"] if tls else []
        m = procs.member("etcd", work, client_port=pp, peer_port=peer, extra_args=extra)
        if tls:
            plain = f"http://127.0.0.1:{pp}"
            m.args = [a.replace(plain, f"{plain},https://127.0.0.1:{pt}") for a in m.args]
        m.start()
        etcdctl = [procs.etcdctl_bin()]
        pyetcdctl = [sys.executable, "-m", "pyetcd.cli"]
        put = run(etcdctl, ["--endpoints", f"127.0.0.1:{pp}", "put", "k", "v"], None)
        assert put["rc"] == 0, put
        for name, args, env in cases(work, pp, pt, tls):
            results.append({"case": name, "args": args, "etcdctl": run(etcdctl, args, env),
                            "pyetcdctl": run(pyetcdctl, args, env)})
        with open(resolv, "w") as f:  # in place: the bind mount pins this file
            f.write("nameserver 127.0.0.2\noptions timeout:1 attempts:2\n")
        args = ["--discovery-srv", "both.test", "get", "k"]
        results.append({"case": "nothing listens on port 53", "args": args,
                        "etcdctl": run(etcdctl, args, None), "pyetcdctl": run(pyetcdctl, args, None)})
    finally:
        if m is not None:
            m.stop()
        dns.stop()
    json.dump({"tls": tls, "ports": [pp, pt], "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
