"""etcdserverpb.Auth: users, roles, permissions, enable/disable, Authenticate (etcd 3.5.1).

Mutations go through the raft log (auth/apply.py applies them on every member). etcd 3.5 also
sends UserGet/List, RoleGet/List and AuthStatus through the log; pyetcd answers them from the
local store after a linearizable read, with the same permission rules (auth/store.py).
"""
from __future__ import annotations

import asyncio

from pyetcd import errors
from pyetcd.auth.context import REQUEST_AUTH
from pyetcd.auth.store import check_password, hash_password
from pyetcd.auth.tokens import SimpleTokens
from pyetcd.pb import raft_internal, rpc, rpc_grpc

from .base import Service, unary

R = raft_internal.InternalRaftRequest


def _caller():
    ai = REQUEST_AUTH.get()
    return ai if hasattr(ai, "username") else None


class AuthService(Service, rpc_grpc.AuthServicer):
    async def _propose(self, **kw):
        return await self.server.propose(R(**kw))

    async def _hash(self, password: str) -> str:
        # bcrypt at cost 10 takes tens of milliseconds: keep it off the event loop
        return await asyncio.get_running_loop().run_in_executor(
            None, hash_password, password, self.server.auth.bcrypt_cost)

    @unary
    async def AuthEnable(self, request, context):
        return await self._propose(auth_enable=request)

    @unary
    async def AuthDisable(self, request, context):
        return await self._propose(auth_disable=request)

    @unary
    async def AuthStatus(self, request, context):
        await self.server.linearizable_read()
        st = self.server.auth
        st.check_admin(_caller())  # etcd 3.5 needAdminPermission
        return rpc.AuthStatusResponse(enabled=st.enabled, authRevision=st.revision)

    @unary
    async def Authenticate(self, request, context):
        st = self.server.auth
        if st.token_type not in ("simple", ""):
            raise errors.unimplemented(f"--auth-token {st.token_type}")  # only simple tokens are built
        await self.server.linearizable_read()
        loop = asyncio.get_running_loop()
        while True:
            hashed, checked = st.password_of(request.name)
            if not await loop.run_in_executor(None, check_password, hashed, request.password):
                raise errors.ErrAuthFailed
            if st.token_type == "":
                raise errors.ErrAuthFailed  # etcd's nop token provider assigns nothing
            # the entry carries no password (etcd 3.5): the check above already happened
            resp = await self._propose(authenticate=raft_internal.InternalAuthenticateRequest(
                name=request.name, simple_token=SimpleTokens.gen_prefix()))
            if checked == st.revision:
                return resp
            # the auth store changed while the password was checked: check again (etcd)

    @unary
    async def UserAdd(self, request, context):
        if not request.options.no_password:
            request.hashedPassword = await self._hash(request.password)
            request.password = ""
        return await self._propose(auth_user_add=request)

    @unary
    async def UserGet(self, request, context):
        await self.server.linearizable_read()
        st = self.server.auth
        ai = _caller()
        try:
            st.check_admin(ai)
        except errors.EtcdError:
            if ai is None or request.name != ai.username:
                raise
        return rpc.AuthUserGetResponse(roles=st.user_get(request.name))

    @unary
    async def UserList(self, request, context):
        await self.server.linearizable_read()
        st = self.server.auth
        st.check_admin(_caller())
        return rpc.AuthUserListResponse(users=st.user_names())

    @unary
    async def UserDelete(self, request, context):
        return await self._propose(auth_user_delete=request)

    @unary
    async def UserChangePassword(self, request, context):
        if request.password:
            request.hashedPassword = await self._hash(request.password)
            request.password = ""
        return await self._propose(auth_user_change_password=request)

    @unary
    async def UserGrantRole(self, request, context):
        return await self._propose(auth_user_grant_role=request)

    @unary
    async def UserRevokeRole(self, request, context):
        return await self._propose(auth_user_revoke_role=request)

    @unary
    async def RoleAdd(self, request, context):
        return await self._propose(auth_role_add=request)

    @unary
    async def RoleGet(self, request, context):
        await self.server.linearizable_read()
        st = self.server.auth
        ai = _caller()
        try:
            st.check_admin(ai)
        except errors.EtcdError:
            if ai is None or not st.has_role(ai.username, request.role):
                raise
        return rpc.AuthRoleGetResponse(perm=st.role_get(request.role))

    @unary
    async def RoleList(self, request, context):
        await self.server.linearizable_read()
        st = self.server.auth
        st.check_admin(_caller())
        return rpc.AuthRoleListResponse(roles=st.role_names())

    @unary
    async def RoleDelete(self, request, context):
        return await self._propose(auth_role_delete=request)

    @unary
    async def RoleGrantPermission(self, request, context):
        return await self._propose(auth_role_grant_permission=request)

    @unary
    async def RoleRevokePermission(self, request, context):
        return await self._propose(auth_role_revoke_permission=request)
