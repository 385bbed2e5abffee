"""Authentication of client requests: the token, and the checks etcd makes before a request
reaches the store (reads, watches, admin-only RPCs). Writes are checked when applied
(auth/apply.py), against the identity their log entry carries.

The guard wraps service methods in place (before the services are registered): each wrapped
call resolves the `token` (or `authorization`) metadata as etcd's AuthInfoFromCtx does, sets
auth.context.REQUEST_AUTH for the rest of the request, and runs its check.
"""
from __future__ import annotations

import asyncio
import inspect

import grpc

from pyetcd import errors
from pyetcd.auth.context import REQUEST_AUTH
from pyetcd.auth.store import AuthInfo
from pyetcd.auth.tokens import SimpleTokens
from pyetcd.server.apply import check


def _token(context) -> str | None:
    md = context.invocation_metadata() or ()
    for name in ("token", "authorization"):  # rpctypes.TokenFieldNameGRPC, TokenFieldNameSwagger
        for k, v in md:
            if k == name:
                return v
    return None


class AuthGuard:
    def __init__(self, server) -> None:
        self.server = server

    async def auth_info(self, context):
        """etcd's AuthInfoFromCtx: None without a token; ErrInvalidAuthToken for a token this
        member does not know (after waiting until it has applied the index the token names)."""
        token = _token(context)
        if token is None:
            return self._info_from_tls(context)
        st = self.server.auth
        index = SimpleTokens.index_of(token)
        if index is None:
            raise errors.ErrInvalidAuthToken
        if index > self.server.applied_index:
            deadline = asyncio.get_running_loop().time() + self.server.request_timeout
            while index > self.server.applied_index:
                if asyncio.get_running_loop().time() > deadline:
                    raise errors.ErrInvalidAuthToken
                await asyncio.sleep(0.005)
        ai = st.info_from_token(token)
        if ai is None:
            raise errors.ErrInvalidAuthToken
        return ai

    def _info_from_tls(self, context):
        """etcd's AuthInfoFromTLS, with --client-cert-auth: the common name of the client's
        verified certificate is the user (not for requests relayed by the gRPC gateway)."""
        if not getattr(self.server.cfg, "client_cert_auth", False):
            return None
        try:
            cn = (context.auth_context() or {}).get("x509_common_name")
        except Exception:  # not a TLS connection
            return None
        if not cn:
            return None
        if any(k == "grpcgateway-accept" for k, _ in (context.invocation_metadata() or ())):
            return None
        name = cn[0].decode("utf-8", "replace") if isinstance(cn[0], bytes) else str(cn[0])
        return AuthInfo(name, self.server.auth.revision)

    async def _enter(self, context):
        ai = await self.auth_info(context)
        REQUEST_AUTH.set(ai)
        return ai

    # ---- checks --------------------------------------------------------------------------
    async def _range(self, req, ai) -> None:
        st = self.server.auth
        if st.enabled and not req.serializable:
            await self.server.linearizable_read()  # etcd checks after the read index, on current grants
        st.check_range(ai, req.key, req.range_end)

    async def _txn(self, req, ai) -> None:
        if check.is_txn_readonly(req):  # writes are checked when applied
            st = self.server.auth
            if st.enabled and not check.is_txn_serializable(req):
                await self.server.linearizable_read()
            st.check_txn(ai, req)

    def _admin(self, req, ai) -> None:
        self.server.auth.check_admin(ai)

    async def _enter_raw(self, context):
        """etcd 3.5.1's maintenance server returns the auth package's errors untranslated:
        clients see gRPC UNKNOWN with the `auth: ...` text."""
        try:
            return await self._enter(context)
        except errors.EtcdError as e:
            raise raw_auth_error(e) from None

    # ---- wrapping ------------------------------------------------------------------------
    def wrap_unary(self, svc, name: str, validate=None, chk=None, raw: bool = False,
                   recheck=None) -> None:
        """`validate` is the request check etcd makes before looking at the token: a request it
        rejects goes straight to the handler, which answers with that error."""
        orig = getattr(svc, name)
        guard = self

        async def handler(request, context):
            if not guard.server.auth.enabled and _token(context) is None:
                REQUEST_AUTH.set(None)  # the common case: nothing to check, nobody to stamp
                return await orig(request, context)
            if validate is not None:
                try:
                    validate(request)
                except errors.EtcdError:
                    return await orig(request, context)
            try:
                ai = await (guard._enter_raw(context) if raw else guard._enter(context))
                if chk is not None:
                    r = chk(request, ai)
                    if inspect.isawaitable(r):
                        await r
            except errors.EtcdError as e:
                if raw:
                    e = raw_auth_error(e)
                await context.abort(e.code, e.message)
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception as e:  # never take the server down on a request
                guard.server.lg.error("auth check failed", method=name, error=repr(e))
                await context.abort(grpc.StatusCode.INTERNAL, f"pyetcd: internal error: {e!r}")
            resp = await orig(request, context)
            if recheck is not None and ai is not None and ai.revision != guard.server.auth.revision \
                    and recheck(request):
                # etcd's doSerialize: the auth store changed while the read was served
                e = errors.ErrAuthOldRevision
                await context.abort(e.code, e.message)
            return resp

        handler.__name__ = name
        setattr(svc, name, handler)

    def wrap_stream(self, svc, name: str, chk=None) -> None:
        """A response-streaming method (Snapshot): checked before the first response."""
        orig = getattr(svc, name)
        guard = self

        async def handler(request, context):
            try:
                ai = await guard._enter(context)
                if chk is not None:
                    chk(request, ai)
            except errors.EtcdError as e:
                e = raw_auth_error(e)
                await context.abort(e.code, e.message)
            async for resp in orig(request, context):
                yield resp

        handler.__name__ = name
        setattr(svc, name, handler)

    async def watch_permitted(self, context, c) -> bool:
        """etcd's isWatchPermitted, on the create request as etcd's recvLoop normalised it:
        an empty key is "\\0", and a range end of "\\0" (every key from key on) became empty,
        so such a watch is checked on its start key alone."""
        try:
            ai = await self.auth_info(context)
            end = b"" if c.range_end == b"\x00" else c.range_end
            self.server.auth.check_range(ai, c.key or b"\x00", end)
        except errors.EtcdError:
            return False
        return True

    def install(self, kv=None, lease=None, maintenance=None, cluster=None, auth=None,
                election=None, lock=None, max_txn_ops: int = 128) -> None:
        if kv is not None:
            self.wrap_unary(kv, "Range", check.check_range, self._range, recheck=lambda r: True)
            self.wrap_unary(kv, "Put", check.check_put)
            self.wrap_unary(kv, "DeleteRange", check.check_delete)
            self.wrap_unary(kv, "Txn", lambda r: check.check_txn(r, max_txn_ops), self._txn,
                            recheck=check.is_txn_readonly)
            self.wrap_unary(kv, "Compact")
        if lease is not None:
            for n in ("LeaseGrant", "LeaseRevoke"):
                self.wrap_unary(lease, n)
        if maintenance is not None:
            self.wrap_unary(maintenance, "Alarm")
            for n in ("Defragment", "Hash", "HashKV"):  # etcd 3.5.1: not MoveLeader
                if hasattr(maintenance, n):
                    self.wrap_unary(maintenance, n, chk=self._admin, raw=True)
            self.wrap_stream(maintenance, "Snapshot", chk=self._admin)
        if cluster is not None:
            for n in ("MemberAdd", "MemberRemove", "MemberUpdate", "MemberPromote"):
                self.wrap_unary(cluster, n, chk=self._admin)
        if auth is not None:
            for n in dir(auth):
                if n[:1].isupper() and callable(getattr(auth, n)):
                    self.wrap_unary(auth, n)
        for svc in (election, lock):  # their writes go through the log as the caller
            if svc is not None:
                for n in dir(svc):
                    if n[:1].isupper() and callable(getattr(svc, n)) and n not in ("Observe",):
                        self.wrap_unary(svc, n)


def raw_auth_error(e: errors.EtcdError) -> errors.EtcdError:
    if e.message.startswith("etcdserver: "):
        return errors.EtcdError(grpc.StatusCode.UNKNOWN, "auth: " + e.message[len("etcdserver: "):])
    return e
