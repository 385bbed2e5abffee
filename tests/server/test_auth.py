"""Auth against real etcd 3.5.1 and pyetcd: the same gRPC sequence, compared response by response.

Each step names a service, a method, a request and the token to send (a label bound by an
earlier Authenticate step, or None). Tokens differ by nature (random prefix, raft index), so an
Authenticate response is compared by shape and its token kept per server under its label.
"""
import re

import grpc
import pytest

from pyetcd.pb import auth as authpb
from pyetcd.pb import rpc, rpc_grpc
from pyetcd.testing import procs

P = authpb.Permission
SHAPE_ONLY = {"Status", "MemberList", "HashKV"}
TOKEN_RE = re.compile(r"^[a-zA-Z]{16}\.\d+$")


class Client:
    def __init__(self, member):
        self.ch = grpc.insecure_channel(member.endpoint)
        self.stubs = {"kv": rpc_grpc.KVStub(self.ch), "auth": rpc_grpc.AuthStub(self.ch),
                      "lease": rpc_grpc.LeaseStub(self.ch), "maint": rpc_grpc.MaintenanceStub(self.ch),
                      "cluster": rpc_grpc.ClusterStub(self.ch), "watch": rpc_grpc.WatchStub(self.ch)}
        self.tokens = {}

    def call(self, svc, method, req, token=None, bind=None, md_key="token"):
        md = [(md_key, self.tokens.get(token, token))] if token else None
        try:
            resp = getattr(self.stubs[svc], method)(req, timeout=10, metadata=md)
        except grpc.RpcError as e:
            return ("error", e.code(), e.details())
        if bind is not None:
            assert TOKEN_RE.match(resp.token), resp.token
            self.tokens[bind] = resp.token
            resp.token = "<token>"
        if method in SHAPE_ONLY:  # ids, sizes, hashes and indexes differ by nature
            return ("ok", type(resp).__name__)
        h = resp.header
        h.cluster_id = h.member_id = h.raft_term = 0
        if svc == "lease" and method == "LeaseGrant":
            self.tokens["lease"] = resp.ID
            resp.ID = 0
        return ("ok", resp)

    def watch_create(self, key, range_end=b"", token=None):
        md = [("token", self.tokens[token])] if token else None
        req = rpc.WatchRequest(create_request=rpc.WatchCreateRequest(key=key, range_end=range_end))
        it = self.stubs["watch"].Watch(iter([req]), timeout=5, metadata=md)
        try:
            first = next(it)
        finally:
            it.cancel()
        first.header.cluster_id = first.header.member_id = first.header.raft_term = 0
        return first

    def close(self):
        self.ch.close()


def _put(k, v=b"v", **kw):
    return ("kv", "Put", rpc.PutRequest(key=k, value=v, **kw))


def _get(k, end=b"", **kw):
    return ("kv", "Range", rpc.RangeRequest(key=k, range_end=end, **kw))


def _grant(role, t, key, end=b""):
    return ("auth", "RoleGrantPermission", rpc.AuthRoleGrantPermissionRequest(name=role, perm=P(permType=t, key=key, range_end=end)))


A = rpc
SETUP = [
    ("auth", "AuthStatus", A.AuthStatusRequest()),
    ("auth", "AuthEnable", A.AuthEnableRequest()),                      # no root user
    ("auth", "UserAdd", A.AuthUserAddRequest(name="root", password="rootpw")),
    ("auth", "AuthEnable", A.AuthEnableRequest()),                      # root lacks the root role
    ("auth", "UserAdd", A.AuthUserAddRequest(name="root", password="x")),
    ("auth", "UserAdd", A.AuthUserAddRequest(name="", password="x")),
    ("auth", "UserGrantRole", A.AuthUserGrantRoleRequest(user="root", role="root")),
    ("auth", "UserGrantRole", A.AuthUserGrantRoleRequest(user="root", role="root")),  # again: no-op
    ("auth", "UserGrantRole", A.AuthUserGrantRoleRequest(user="root", role="nope")),
    ("auth", "UserAdd", A.AuthUserAddRequest(name="alice", password="apw")),
    ("auth", "UserAdd", A.AuthUserAddRequest(name="nopw", options=authpb.UserAddOptions(no_password=True))),
    ("auth", "RoleAdd", A.AuthRoleAddRequest(name="r1")),
    ("auth", "RoleAdd", A.AuthRoleAddRequest(name="r1")),
    ("auth", "RoleAdd", A.AuthRoleAddRequest(name="")),
    _grant("r1", P.READWRITE, b"a/", b"a0"),
    _grant("r1", P.READ, b"ro"),
    _grant("r1", P.WRITE, b"wo"),
    _grant("r1", P.READ, b"z", b"\x00"),
    _grant("r1", P.READ, b"ro"),                                        # same key: type update
    _grant("nope", P.READ, b"x"),
    ("auth", "RoleGrantPermission", A.AuthRoleGrantPermissionRequest(name="r1")),
    ("auth", "RoleGet", A.AuthRoleGetRequest(role="r1")),
    ("auth", "RoleGet", A.AuthRoleGetRequest(role="root")),
    ("auth", "RoleGet", A.AuthRoleGetRequest(role="nope")),
    ("auth", "UserGrantRole", A.AuthUserGrantRoleRequest(user="alice", role="r1")),
    ("auth", "UserGet", A.AuthUserGetRequest(name="alice")),
    ("auth", "UserGet", A.AuthUserGetRequest(name="nobody")),
    ("auth", "UserList", A.AuthUserListRequest()),
    ("auth", "RoleList", A.AuthRoleListRequest()),
    ("auth", "Authenticate", A.AuthenticateRequest(name="root", password="rootpw")),  # not enabled
    _put(b"a/1"), _put(b"ro"), _put(b"zz"),
    ("auth", "AuthStatus", A.AuthStatusRequest()),
    ("auth", "AuthEnable", A.AuthEnableRequest()),
    ("auth", "AuthEnable", A.AuthEnableRequest()),                      # enabled: root needed
    ("auth", "AuthStatus", A.AuthStatusRequest()),
]

# (step, token label); Authenticate steps bind their token to the label in the 4th slot
ENABLED = [
    (("auth", "Authenticate", A.AuthenticateRequest(name="root", password="wrong")), None),
    (("auth", "Authenticate", A.AuthenticateRequest(name="ghost", password="x")), None),
    (("auth", "Authenticate", A.AuthenticateRequest(name="nopw", password="")), None),
    (("auth", "Authenticate", A.AuthenticateRequest(name="root", password="rootpw")), None, "root"),
    (("auth", "Authenticate", A.AuthenticateRequest(name="alice", password="apw")), None, "alice"),
    (_get(b"a/1"), None), (_put(b"a/2"), None),
    (_get(b"a/1"), "alice"), (_get(b"a/", b"a0"), "alice"), (_get(b"a/", b"a1"), "alice"),
    (_get(b"ro"), "alice"), (_put(b"ro"), "alice"), (_put(b"wo"), "alice"), (_get(b"wo"), "alice"),
    (_get(b"zz"), "alice"), (_get(b"z", b"\x00"), "alice"), (_get(b"y", b"\x00"), "alice"),
    (_get(b"\x00", b"\x00"), "alice"), (_put(b"a/3", prev_kv=True), "alice"), (_put(b"wo", prev_kv=True), "alice"),
    (("kv", "DeleteRange", A.DeleteRangeRequest(key=b"a/", range_end=b"a0")), "alice"),
    (("kv", "DeleteRange", A.DeleteRangeRequest(key=b"wo", prev_kv=True)), "alice"),
    (("kv", "DeleteRange", A.DeleteRangeRequest(key=b"b")), "alice"),
    (("kv", "Txn", A.TxnRequest(compare=[A.Compare(key=b"ro", target=A.Compare.VERSION, version=1)],
                                success=[A.RequestOp(request_range=A.RangeRequest(key=b"ro"))])), "alice"),
    (("kv", "Txn", A.TxnRequest(compare=[A.Compare(key=b"q", target=A.Compare.VERSION, version=1)])), "alice"),
    (("kv", "Txn", A.TxnRequest(success=[A.RequestOp(request_put=A.PutRequest(key=b"a/9"))])), "alice"),
    (("kv", "Txn", A.TxnRequest(failure=[A.RequestOp(request_put=A.PutRequest(key=b"q"))])), "alice"),
    (_get(b"anything"), "root"), (_put(b"anything"), "root"), (_get(b"\x00", b"\x00"), "root"),
    (_get(b"a/1"), "bogus.5"), (_get(b"a/1"), "bogus"),
    (("auth", "UserList", A.AuthUserListRequest()), "alice"),
    (("auth", "UserList", A.AuthUserListRequest()), None),
    (("auth", "UserList", A.AuthUserListRequest()), "root"),
    (("auth", "UserGet", A.AuthUserGetRequest(name="alice")), "alice"),
    (("auth", "UserGet", A.AuthUserGetRequest(name="root")), "alice"),
    (("auth", "RoleGet", A.AuthRoleGetRequest(role="r1")), "alice"),
    (("auth", "RoleGet", A.AuthRoleGetRequest(role="root")), "alice"),
    (("auth", "RoleList", A.AuthRoleListRequest()), "alice"),
    (("auth", "AuthStatus", A.AuthStatusRequest()), "alice"),
    (("auth", "AuthStatus", A.AuthStatusRequest()), None),
    (("auth", "RoleAdd", A.AuthRoleAddRequest(name="r2")), "alice"),
    (("auth", "RoleAdd", A.AuthRoleAddRequest(name="r2")), None),
    (("auth", "RoleAdd", A.AuthRoleAddRequest(name="r2")), "root"),
    (("auth", "UserDelete", A.AuthUserDeleteRequest(name="root")), "root"),
    (("auth", "UserRevokeRole", A.AuthUserRevokeRoleRequest(name="root", role="root")), "root"),
    (("auth", "RoleDelete", A.AuthRoleDeleteRequest(role="root")), "root"),
    (("auth", "UserRevokeRole", A.AuthUserRevokeRoleRequest(name="alice", role="r2")), "root"),
    (("auth", "RoleRevokePermission", A.AuthRoleRevokePermissionRequest(role="r1", key=b"ro")), "root"),
    (("auth", "RoleRevokePermission", A.AuthRoleRevokePermissionRequest(role="r1", key=b"ro")), "root"),
    (_get(b"ro"), "alice"),
    (("maint", "Status", A.StatusRequest()), None),
    (("maint", "Alarm", A.AlarmRequest()), None),
    (("maint", "Defragment", A.DefragmentRequest()), "alice"),
    (("maint", "Defragment", A.DefragmentRequest()), None),
    (("maint", "HashKV", A.HashKVRequest()), "alice"),
    (("maint", "MoveLeader", A.MoveLeaderRequest(targetID=1)), "alice"),
    (("cluster", "MemberList", A.MemberListRequest()), None),
    (("cluster", "MemberRemove", A.MemberRemoveRequest(ID=1)), "alice"),
    (("cluster", "MemberRemove", A.MemberRemoveRequest(ID=1)), "root"),
    (("lease", "LeaseGrant", A.LeaseGrantRequest(TTL=60)), None),
    (("lease", "LeaseGrant", A.LeaseGrantRequest(TTL=60)), "alice"),
    (("kv", "Compact", A.CompactionRequest(revision=1)), None),
    (("kv", "Compact", A.CompactionRequest(revision=1)), "alice"),
    # the token of a user whose password changed, or who was deleted, is dead
    (("auth", "UserChangePassword", A.AuthUserChangePasswordRequest(name="alice", password="apw2")), "root"),
    (_get(b"a/1"), "alice"),
    (("auth", "Authenticate", A.AuthenticateRequest(name="alice", password="apw")), None),
    (("auth", "Authenticate", A.AuthenticateRequest(name="alice", password="apw2")), None, "alice"),
    (_get(b"a/1"), "alice"),
    (("auth", "UserDelete", A.AuthUserDeleteRequest(name="alice")), "root"),
    (_get(b"a/1"), "alice"),
    (("auth", "RoleDelete", A.AuthRoleDeleteRequest(role="r1")), "root"),
    (("auth", "AuthStatus", A.AuthStatusRequest()), "root"),
    (("auth", "AuthDisable", A.AuthDisableRequest()), None),
    (("auth", "AuthDisable", A.AuthDisableRequest()), "root"),
    (("auth", "AuthStatus", A.AuthStatusRequest()), None),
    (_get(b"a/1"), None),
    (_get(b"a/1"), "root"),
    (("auth", "AuthDisable", A.AuthDisableRequest()), None),
]


def _run(ce, cp, step, token=None, bind=None):
    svc, method, req = step
    want = ce.call(svc, method, req, token, bind)
    got = cp.call(svc, method, req, token, bind)
    assert got == want, f"{method} {req} token={token}\netcd:   {want}\npyetcd: {got}"


def test_auth_sequence_matches_real_etcd(both):
    etcd, py = both
    ce, cp = Client(etcd), Client(py)
    try:
        for step in SETUP:
            _run(ce, cp, step)
        for item in ENABLED:
            step, token = item[0], item[1]
            _run(ce, cp, step, token, item[2] if len(item) > 2 else None)
    finally:
        ce.close()
        cp.close()


def _setup_alice(c, grants=((P.READWRITE, b"a/", b"a0"),)):
    """root (root role), alice (role r1 with `grants`), auth enabled; tokens bound as root/alice."""
    for svc, method, req in [
        ("auth", "UserAdd", A.AuthUserAddRequest(name="root", password="rootpw")),
        ("auth", "UserGrantRole", A.AuthUserGrantRoleRequest(user="root", role="root")),
        ("auth", "UserAdd", A.AuthUserAddRequest(name="alice", password="apw")),
        ("auth", "RoleAdd", A.AuthRoleAddRequest(name="r1")),
        *[_grant("r1", t, k, e) for t, k, e in grants],
        ("auth", "UserGrantRole", A.AuthUserGrantRoleRequest(user="alice", role="r1")),
        ("auth", "AuthEnable", A.AuthEnableRequest()),
    ]:
        got = c.call(svc, method, req)
        assert got[0] == "ok", (method, got)
    for name, pw in (("root", "rootpw"), ("alice", "apw")):
        assert c.call("auth", "Authenticate", A.AuthenticateRequest(name=name, password=pw), bind=name)[0] == "ok"


WATCHES = [  # (key, range_end, token)
    (b"a/1", b"", "alice"), (b"b", b"", "alice"), (b"a/", b"a0", "alice"), (b"a/", b"b", "alice"),
    (b"a/", b"\x00", "alice"),   # from-key: etcd checks the start key alone
    (b"", b"\x00", "alice"), (b"a/1", b"", None), (b"zz", b"", "root"),
]


def test_watch_lease_and_metadata_checks_match_real_etcd(both):
    etcd, py = both
    ce, cp = Client(etcd), Client(py)
    try:
        for c in (ce, cp):
            _setup_alice(c)
        for key, end, token in WATCHES:
            want, got = ce.watch_create(key, end, token), cp.watch_create(key, end, token)
            assert got == want, f"watch {key!r}..{end!r} as {token}\netcd:   {want}\npyetcd: {got}"
        # a lease holding a key alice may not write: she may not revoke it (checkLeasePuts)
        steps = [
            (("lease", "LeaseGrant", A.LeaseGrantRequest(TTL=600)), "root"),
        ]
        for (svc, method, req), token in steps:
            assert ce.call(svc, method, req, token) == cp.call(svc, method, req, token)
        for c in (ce, cp):
            assert c.call("kv", "Put", A.PutRequest(key=b"secret", value=b"s", lease=c.tokens["lease"]), "root")[0] == "ok"
            assert c.call("kv", "Put", A.PutRequest(key=b"a/l", value=b"s", lease=c.tokens["lease"]), "root")[0] == "ok"
        results = []
        for c in (ce, cp):
            lid = c.tokens["lease"]
            results.append([
                c.call("lease", "LeaseRevoke", A.LeaseRevokeRequest(ID=lid), "alice"),
                c.call("lease", "LeaseRevoke", A.LeaseRevokeRequest(ID=lid), None),
                c.call("lease", "LeaseTimeToLive", A.LeaseTimeToLiveRequest(ID=lid, keys=True), "alice")[0],
                c.call("kv", "Put", A.PutRequest(key=b"a/2", value=b"x", lease=lid), "alice"),
                c.call("kv", "Range", A.RangeRequest(key=b"a/1"), "alice", md_key="authorization"),
                c.call("kv", "Range", A.RangeRequest(key=b"b"), "alice", md_key="authorization"),
                c.call("lease", "LeaseRevoke", A.LeaseRevokeRequest(ID=lid), "root"),
                c.call("kv", "Range", A.RangeRequest(key=b"secret"), "root"),
            ])
        assert results[1] == results[0]
    finally:
        ce.close()
        cp.close()


def test_auth_state_survives_restart_and_snapshot_into_real_etcd(tmp_path):
    """pyetcd keeps users, roles, the flag and the revision in etcd's buckets: they survive a
    restart, and a pyetcd snapshot restored into real etcd 3.5.1 has the same auth state."""
    import subprocess

    snap = str(tmp_path / "py.db")
    m = procs.member("pyetcd", str(tmp_path))
    try:
        m.start()
        c = Client(m)
        _setup_alice(c)
        before = c.call("auth", "AuthStatus", A.AuthStatusRequest(), "root")
        old = dict(c.tokens)
        c.close()
        m.stop()
        m.start()
        c = Client(m)
        c.tokens = old
        # tokens live in memory only (etcd too): the old one is gone after a restart
        assert c.call("kv", "Range", A.RangeRequest(key=b"a/1"), "alice") == (
            "error", grpc.StatusCode.UNAUTHENTICATED, "etcdserver: invalid auth token")
        assert c.call("auth", "Authenticate", A.AuthenticateRequest(name="root", password="rootpw"), bind="root")[0] == "ok"
        assert c.call("auth", "AuthStatus", A.AuthStatusRequest(), "root") == before
        assert c.call("auth", "Authenticate", A.AuthenticateRequest(name="alice", password="apw"), bind="alice")[0] == "ok"
        assert c.call("kv", "Range", A.RangeRequest(key=b"b"), "alice")[1] == grpc.StatusCode.PERMISSION_DENIED
        r = procs.etcdctl(m.endpoint, "--user", "root:rootpw", "snapshot", "save", snap)
        assert r.returncode == 0, r.stderr
        c.close()
    finally:
        m.stop()
    target = procs.member("etcd", str(tmp_path / "dst"))
    r = subprocess.run([procs.etcd_bin("etcdutl"), "snapshot", "restore", snap, "--data-dir", target.data_dir,
                        "--name", target.name, "--initial-cluster", f"{target.name}={target.peer_url}",
                        "--initial-advertise-peer-urls", target.peer_url], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    try:
        target.start()
        c = Client(target)
        assert c.call("auth", "Authenticate", A.AuthenticateRequest(name="root", password="rootpw"), bind="root")[0] == "ok"
        assert c.call("auth", "AuthStatus", A.AuthStatusRequest(), "root") == before
        assert c.call("auth", "Authenticate", A.AuthenticateRequest(name="alice", password="apw"), bind="alice")[0] == "ok"
        assert c.call("auth", "RoleGet", A.AuthRoleGetRequest(role="r1"), "root")[1].perm == [
            P(permType=P.READWRITE, key=b"a/", range_end=b"a0")]
        assert c.call("kv", "Range", A.RangeRequest(key=b"b"), "alice")[1] == grpc.StatusCode.PERMISSION_DENIED
        c.close()
    finally:
        target.stop()


def test_auth_is_replicated_on_a_three_member_cluster(tmp_path):
    from pyetcd.testing.cluster import Cluster

    with Cluster("pyetcd", str(tmp_path), size=3, proxy=False) as cl:
        names = cl.running()
        cs = {n: Client(cl.members[n]) for n in names}
        try:
            a, b, c = (cs[n] for n in names)
            _setup_alice(a)
            # a token assigned by the Authenticate entry is known to every member that applied it
            for other in (b, c):
                other.tokens = dict(a.tokens)
                assert other.call("kv", "Put", A.PutRequest(key=b"a/x", value=b"1"), "alice")[0] == "ok"
                assert other.call("kv", "Put", A.PutRequest(key=b"b", value=b"1"), "alice") == (
                    "error", grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied")
                assert other.call("auth", "AuthStatus", A.AuthStatusRequest(), "root") == \
                    a.call("auth", "AuthStatus", A.AuthStatusRequest(), "root")
            assert b.call("auth", "UserDelete", A.AuthUserDeleteRequest(name="alice"), "root")[0] == "ok"
            for other in (a, c):
                # a write through `other` returns once `other` applied it, so after the delete too;
                # proposed before `other` applied the delete, it is refused as stale (etcd too)
                for _ in range(50):
                    got = other.call("kv", "Put", A.PutRequest(key=b"sync", value=b"1"), "root")
                    if got != ("error", grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: revision of auth store is old"):
                        break
                assert got[0] == "ok", got
                got = other.call("kv", "Range", A.RangeRequest(key=b"a/x"), "alice")
                assert got == ("error", grpc.StatusCode.UNAUTHENTICATED, "etcdserver: invalid auth token")
        finally:
            for x in cs.values():
                x.close()


def test_lock_and_election_respect_permissions_as_real_etcd(both):
    """Lock and Election act as their caller (etcd's v3client carries the caller's token)."""
    from pyetcd.pb import v3election, v3election_grpc, v3lock, v3lock_grpc

    etcd, py = both
    outs = []
    for m in (etcd, py):
        c = Client(m)
        try:
            _setup_alice(c)
            lock = v3lock_grpc.LockStub(c.ch)
            elect = v3election_grpc.ElectionStub(c.ch)
            lid = c.stubs["lease"].LeaseGrant(A.LeaseGrantRequest(TTL=60), timeout=10,
                                              metadata=[("token", c.tokens["root"])]).ID
            out = []
            for fn, req, token in [
                (lock.Lock, v3lock.LockRequest(name=b"b/lock", lease=lid), "alice"),
                (lock.Lock, v3lock.LockRequest(name=b"a/lock", lease=lid), None),
                (lock.Lock, v3lock.LockRequest(name=b"a/lock", lease=lid), "alice"),
                (elect.Leader, v3election.LeaderRequest(name=b"b/e"), "alice"),
                (elect.Campaign, v3election.CampaignRequest(name=b"b/e", lease=lid, value=b"x"), "alice"),
            ]:
                md = [("token", c.tokens[token])] if token else None
                try:
                    resp = fn(req, timeout=10, metadata=md)
                    out.append(("ok", type(resp).__name__))
                except grpc.RpcError as e:
                    out.append(("error", e.code(), e.details()))
            outs.append(out)
        finally:
            c.close()
    assert outs[1] == outs[0], outs
    assert [o[0] for o in outs[0]] == ["error", "error", "ok", "error", "error"], outs[0]


def test_client_certificate_common_name_is_the_user_as_real_etcd(tmp_path):
    """With --client-cert-auth, a request without a token acts as the CN of the client's
    verified certificate (the test client's CN is "client")."""
    from pyetcd.testing import certs

    if not certs.have_openssl():
        pytest.skip("openssl not installed")
    c = certs.make(str(tmp_path / "certs"))
    tls = ["--cert-file", c["server"], "--key-file", c["server-key"], "--trusted-ca-file", c["ca"],
           "--client-cert-auth"]
    creds = grpc.ssl_channel_credentials(root_certificates=open(c["ca"], "rb").read(),
                                         private_key=open(c["client-key"], "rb").read(),
                                         certificate_chain=open(c["client"], "rb").read())
    outs = []
    for kind in ("etcd", "pyetcd"):
        m = procs.member(kind, str(tmp_path), extra_args=tls)
        https = f"https://127.0.0.1:{m.client_port}"
        args = list(m.args)
        args[args.index("--listen-client-urls") + 1] = https
        args[args.index("--advertise-client-urls") + 1] = https
        m.args = args
        try:
            m.start()
            cl = Client(m)
            cl.ch.close()
            cl.ch = grpc.secure_channel(m.endpoint, creds)
            cl.stubs = {"kv": rpc_grpc.KVStub(cl.ch), "auth": rpc_grpc.AuthStub(cl.ch),
                        "maint": rpc_grpc.MaintenanceStub(cl.ch)}
            _setup_alice(cl)
            out = [cl.call("kv", "Range", A.RangeRequest(key=b"a/1")),            # user "client" not there yet
                   cl.call("auth", "UserList", A.AuthUserListRequest())]
            for step in [("auth", "UserAdd", A.AuthUserAddRequest(name="client", password="cpw")),
                         ("auth", "UserGrantRole", A.AuthUserGrantRoleRequest(user="client", role="r1"))]:
                out.append(cl.call(*step, token="root"))
            out += [cl.call("kv", "Range", A.RangeRequest(key=b"a/1")),
                    cl.call("kv", "Put", A.PutRequest(key=b"a/1", value=b"c")),
                    cl.call("kv", "Range", A.RangeRequest(key=b"b")),
                    cl.call("kv", "Put", A.PutRequest(key=b"b", value=b"c")),
                    cl.call("auth", "UserList", A.AuthUserListRequest()),
                    cl.call("maint", "Defragment", A.DefragmentRequest()),
                    cl.call("kv", "Range", A.RangeRequest(key=b"b"), "root")]   # a token wins
            outs.append(out)
            cl.close()
        finally:
            m.stop()
    assert outs[1] == outs[0]
    assert [o[0] for o in outs[0]] == ["error", "error", "ok", "ok", "ok", "ok", "error", "error", "error", "error", "ok"], outs[0]
