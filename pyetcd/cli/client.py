"""The gRPC side of pyetcdctl: one channel over all --endpoints (round robin, like clientv3),
unary calls with the command timeout, authentication token, and etcdctl's error texts."""
from __future__ import annotations

import os
import sys

from pyetcd.cli.base import EXIT_BAD_ARGS, EXIT_BAD_CONNECTION, CliExit, fail

# method name -> (service, response type name)
_SERVICES = {
    "KV": ["Range", "Put", "DeleteRange", "Txn", "Compact"],
    "Lease": ["LeaseGrant", "LeaseRevoke", "LeaseTimeToLive", "LeaseLeases"],
    "Cluster": ["MemberAdd", "MemberRemove", "MemberUpdate", "MemberList", "MemberPromote"],
    "Maintenance": ["Alarm", "Status", "Defragment", "Hash", "HashKV", "MoveLeader"],
    "Auth": ["AuthEnable", "AuthDisable", "AuthStatus", "Authenticate", "UserAdd", "UserGet",
             "UserList", "UserDelete", "UserChangePassword", "UserGrantRole", "UserRevokeRole",
             "RoleAdd", "RoleGet", "RoleList", "RoleDelete", "RoleGrantPermission",
             "RoleRevokePermission"],
}
_RESP_NAME = {"Range": "RangeResponse", "Put": "PutResponse", "DeleteRange": "DeleteRangeResponse",
              "Txn": "TxnResponse", "Compact": "CompactionResponse", "Alarm": "AlarmResponse",
              "Status": "StatusResponse", "Defragment": "DefragmentResponse", "Hash": "HashResponse",
              "HashKV": "HashKVResponse", "MoveLeader": "MoveLeaderResponse"}
_GO_CODE = {
    "OK": "OK", "CANCELLED": "Canceled", "UNKNOWN": "Unknown", "INVALID_ARGUMENT": "InvalidArgument",
    "DEADLINE_EXCEEDED": "DeadlineExceeded", "NOT_FOUND": "NotFound", "ALREADY_EXISTS": "AlreadyExists",
    "PERMISSION_DENIED": "PermissionDenied", "RESOURCE_EXHAUSTED": "ResourceExhausted",
    "FAILED_PRECONDITION": "FailedPrecondition", "ABORTED": "Aborted", "OUT_OF_RANGE": "OutOfRange",
    "UNIMPLEMENTED": "Unimplemented", "INTERNAL": "Internal", "UNAVAILABLE": "Unavailable",
    "DATA_LOSS": "DataLoss", "UNAUTHENTICATED": "Unauthenticated",
}


class _Raw:
    def __init__(self, payload: bytes):
        self.payload = payload

    def SerializeToString(self) -> bytes:  # noqa: N802 - the protobuf message method name
        return self.payload


class EtcdError(Exception):
    """An RPC failure, rendered the way clientv3 + rpctypes render it."""

    def __init__(self, code: str, desc: str, client_deadline: bool = False):
        self.code, self.desc = code, desc
        if desc.startswith("etcdserver: "):
            msg = desc
        elif code == "DEADLINE_EXCEEDED" and client_deadline:
            msg = "context deadline exceeded"
        elif code == "CANCELLED":
            msg = "context canceled"
        else:
            msg = f"rpc error: code = {_GO_CODE.get(code, code)} desc = {desc}"
        super().__init__(msg)


_CODE_NAMES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
               "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
               "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
               "UNAUTHENTICATED"]


def to_etcd_error(e) -> EtcdError:
    code = e.code().name if e.code() is not None else "UNKNOWN"
    desc = e.details() or ""
    client_deadline = code == "DEADLINE_EXCEEDED" and (desc in ("Deadline Exceeded", "")
                                                       or "deadline" in desc.lower())
    return EtcdError(code, desc, client_deadline)


def import_grpc():
    """grpc C-core logs handshake/connect failures on stderr; etcdctl's stderr has only the Error
    line for those (its zap warnings aside). --debug keeps them (GRPC_VERBOSITY=DEBUG)."""
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    import grpc
    return grpc


def strip_scheme(ep: str) -> tuple[str, bool]:
    for pfx, secure in (("https://", True), ("unixs://", True), ("http://", False), ("unix://", False)):
        if ep.startswith(pfx):
            return ep[len(pfx):], secure
    return ep, False


def _is_ipv4(host: str) -> bool:
    import socket
    try:
        socket.inet_aton(host)
        return host.count(".") == 3
    except OSError:
        return False


def grpc_target(endpoints: list[str]) -> tuple[str, bool]:
    hosts = []
    secure = False
    for ep in endpoints:
        hp, sec = strip_scheme(ep)
        secure = secure or sec
        hosts.append(hp)
    if len(hosts) == 1:
        return hosts[0], secure
    resolved = []
    for hp in hosts:
        host, _, port = hp.rpartition(":")
        if not _is_ipv4(host):
            import socket
            try:
                host = socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0]
            except OSError:
                continue
        resolved.append(f"{host}:{port}")
    return "ipv4:" + ",".join(resolved), secure


class Client:
    def __init__(self, endpoints, command_timeout=5.0, dial_timeout=2.0, keepalive_time=2.0,
                 keepalive_timeout=6.0, creds=None, user="", password="", server_name=""):
        self.endpoints = list(endpoints)
        self._server_name = server_name  # TLS name to verify instead of each endpoint's host
        self.timeout = command_timeout
        self.dial_timeout = dial_timeout
        self._keepalive = (keepalive_time, keepalive_timeout)
        self._creds = creds
        self._secure = any(strip_scheme(e)[1] for e in self.endpoints)
        self._channel = None
        self._methods = {}
        self.metadata = None
        # unary calls go over the small HTTP/2 client when possible (see h2c.py): grpcio is only
        # imported for streams, TLS, or an endpoint that does not answer at once.
        self._h2 = None
        self._h2_ok = not (self._secure or creds is not None) and not os.environ.get("PYETCDCTL_NO_H2C")
        if user:
            self.authenticate(user, password)

    @property
    def channel(self):
        if self._channel is None:
            grpc = import_grpc()
            self._target, _ = grpc_target(self.endpoints)
            opts = [("grpc.lb_policy_name", "round_robin"),
                    ("grpc.max_receive_message_length", 2**31 - 1),
                    ("grpc.max_send_message_length", 2 * 1024 * 1024 + 4096),
                    ("grpc.enable_http_proxy", 0)]
            ka_time, ka_timeout = self._keepalive
            if ka_time > 0:
                opts += [("grpc.keepalive_time_ms", int(ka_time * 1000)),
                         ("grpc.keepalive_timeout_ms", int(ka_timeout * 1000))]
            name = self._server_name
            if not name and self._target.startswith("ipv4:"):
                # an address list has no host name of its own to verify (clientv3 checks each
                # endpoint's own host); use the first endpoint's, as for SRV-discovered members
                name = strip_scheme(self.endpoints[0])[0].rpartition(":")[0].strip("[]")
            if name and (self._secure or self._creds is not None):  # Go ignores a trailing dot
                opts.append(("grpc.ssl_target_name_override", name.rstrip(".")))
            if self._secure or self._creds is not None:
                self._channel = grpc.secure_channel(self._target, self._creds or grpc.ssl_channel_credentials(), opts)
            else:
                self._channel = grpc.insecure_channel(self._target, opts)
        return self._channel

    def _h2_call(self, path, request, timeout):
        """Returns response bytes, or None when the call should go through grpcio instead."""
        try:
            from pyetcd.cli import h2c
        except ImportError:
            self._h2_ok = False
            return None
        if self._h2 is None:
            for ep in self.endpoints:
                try:
                    self._h2 = h2c.Conn(strip_scheme(ep)[0], min(timeout, max(self.dial_timeout, 0.1)))
                    break
                except h2c.ConnectError:
                    continue
            if self._h2 is None:
                self._h2_ok = False
                return None
        self._h2.sock.settimeout(timeout)
        try:
            return self._h2.unary(path, request.SerializeToString(), self.metadata or ())
        except h2c.CallError as e:
            code = _CODE_NAMES[e.code] if 0 <= e.code < len(_CODE_NAMES) else "UNKNOWN"
            raise EtcdError(code, e.message) from None
        except TimeoutError:  # socket.timeout is TimeoutError since Python 3.10
            raise EtcdError("DEADLINE_EXCEEDED", "", client_deadline=True) from None
        except OSError:
            self._h2_ok = False
            return None

    def authenticate(self, user, password):
        from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
        try:
            resp = self.call("Authenticate", rpc.AuthenticateRequest(name=user, password=password))
        except EtcdError as e:
            if str(e) == "etcdserver: authentication is not enabled":
                return  # clientv3 carries on without a token
            raise CliExit(EXIT_BAD_CONNECTION, str(e))
        self.metadata = (("token", resp.token),)

    def _method(self, name):
        m = self._methods.get(name)
        if m is None:
            svc = next(s for s, ms in _SERVICES.items() if name in ms)
            resp_t = self._resp_type(name)
            m = self.channel.unary_unary(f"/etcdserverpb.{svc}/{name}",
                                         request_serializer=lambda r: r.SerializeToString(),
                                         response_deserializer=resp_t.FromString)
            self._methods[name] = m
        return m

    def call_raw(self, path, payload: bytes):
        """A unary call with an already-encoded request: response bytes, or None if only
        grpcio can make this call (the caller then uses call())."""
        if not self._h2_ok:
            return None
        return self._h2_call(path, _Raw(payload), self.timeout)

    def _resp_type(self, name):
        from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
        default = ("Auth" + name if name.startswith(("User", "Role")) else name) + "Response"
        return getattr(rpc, _RESP_NAME.get(name, default))

    def call(self, name, request, timeout=None):
        timeout = timeout or self.timeout
        if self._h2_ok:
            svc = next(s for s, ms in _SERVICES.items() if name in ms)
            data = self._h2_call(f"/etcdserverpb.{svc}/{name}", request, timeout)
            if data is not None:
                return self._resp_type(name).FromString(data)
        import grpc
        try:
            return self._method(name)(request, timeout=timeout, metadata=self.metadata, wait_for_ready=True)
        except grpc.RpcError as e:
            raise to_etcd_error(e) from None

    def stream(self, service, name, req_iter, resp_type, timeout=None):
        m = self.channel.stream_stream(f"/{service}/{name}",
                                       request_serializer=lambda r: r.SerializeToString(),
                                       response_deserializer=resp_type.FromString)
        return m(req_iter, timeout=timeout, metadata=self.metadata, wait_for_ready=True)

    def unary(self, service, name, request, resp_type, timeout=None):
        m = self.channel.unary_unary(f"/{service}/{name}",
                                     request_serializer=lambda r: r.SerializeToString(),
                                     response_deserializer=resp_type.FromString)
        import grpc
        try:
            return m(request, timeout=timeout, metadata=self.metadata, wait_for_ready=True)
        except grpc.RpcError as e:
            raise to_etcd_error(e) from None

    def server_stream(self, service, name, request, resp_type, timeout=None):
        m = self.channel.unary_stream(f"/{service}/{name}",
                                      request_serializer=lambda r: r.SerializeToString(),
                                      response_deserializer=resp_type.FromString)
        return m(request, timeout=timeout, metadata=self.metadata, wait_for_ready=True)

    def close(self):
        if self._h2 is not None:
            self._h2.close()
        if self._channel is not None:
            self._channel.close()


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def user_password(user: str, password: str, prompt_name: str = "Password: "):
    if not user:
        return "", ""
    if password:
        if ":" in user:
            fail(EXIT_BAD_ARGS, "username contains ':' and password is also given")  # noqa
        return user, password
    name, sep, pw = user.partition(":")
    if not sep:
        import getpass
        try:
            pw = getpass.getpass(prompt_name)
        except (EOFError, OSError) as e:
            fail(EXIT_BAD_ARGS, e)
    return name, pw


def client_from_flags(flags, endpoints=None, auth: bool = True) -> Client:
    eps = endpoints if endpoints is not None else list(flags.get("endpoints"))
    creds = None
    cert, key, ca = flags.get("cert"), flags.get("key"), flags.get("cacert")
    # etcdctl verifies servers against the discovery domain unless insecure discovery is allowed
    server_name = flags.get("discovery-srv") if not flags.get("insecure-discovery") else ""
    if cert and not key or key and not cert:
        fail(EXIT_BAD_ARGS, f"KeyFile and CertFile must both be present[key: {key}, cert: {cert}]")
    for path in (cert, key, ca):
        if path and not os.path.exists(path):
            fail(EXIT_BAD_ARGS, f"open {path}: no such file or directory")
    # clientv3 builds a TLS config when any TLS setting is given, then lets the first endpoint's
    # scheme decide: https:// always TLS, http:// never, no scheme: TLS if configured.
    first = eps[0] if eps else ""
    secure = strip_scheme(first)[1] or (not first.startswith("http://") and (
        not flags.get("insecure-transport") or bool(cert or ca or server_name)))
    if secure:
        grpc = import_grpc()
        try:
            creds = grpc.ssl_channel_credentials(
                root_certificates=_read(ca) if ca else None,
                private_key=_read(key) if key else None,
                certificate_chain=_read(cert) if cert else None)
        except OSError as e:
            fail(EXIT_BAD_ARGS, e)
    user, password = user_password(flags.get("user"), flags.get("password")) if auth else ("", "")
    if flags.get("debug"):
        os.environ["GRPC_VERBOSITY"] = "DEBUG"
        print(f"pyetcdctl: endpoints={eps}", file=sys.stderr)
    return Client(eps, command_timeout=flags.get("command-timeout") / 1e9,
                  dial_timeout=flags.get("dial-timeout") / 1e9,
                  keepalive_time=flags.get("keepalive-time") / 1e9,
                  keepalive_timeout=flags.get("keepalive-timeout") / 1e9,
                  creds=creds, user=user, password=password, server_name=server_name)
