"""Applying auth entries and checking the permissions of applied writes (etcd's authApplierV3).

Runs on every member, in log order, before the KV/lease appliers: the identity is the one the
entry's header carries, so every member reaches the same verdict.
"""
from __future__ import annotations

from pyetcd.pb import rpc

from .store import AuthInfo, AuthStore

# etcd 3.5 apply_auth.go needAdminPermission (UserList/RoleList/AuthStatus are served locally
# here and checked in the API layer).
ADMIN = frozenset({
    "auth_enable", "auth_disable", "auth_user_add", "auth_user_delete", "auth_user_change_password",
    "auth_user_grant_role", "auth_user_revoke_role", "auth_role_add", "auth_role_grant_permission",
    "auth_role_revoke_permission", "auth_role_delete"})

_RESP = {
    "auth_enable": rpc.AuthEnableResponse, "auth_disable": rpc.AuthDisableResponse,
    "auth_user_add": rpc.AuthUserAddResponse, "auth_user_delete": rpc.AuthUserDeleteResponse,
    "auth_user_change_password": rpc.AuthUserChangePasswordResponse,
    "auth_user_grant_role": rpc.AuthUserGrantRoleResponse, "auth_user_revoke_role": rpc.AuthUserRevokeRoleResponse,
    "auth_role_add": rpc.AuthRoleAddResponse, "auth_role_delete": rpc.AuthRoleDeleteResponse,
    "auth_role_grant_permission": rpc.AuthRoleGrantPermissionResponse,
    "auth_role_revoke_permission": rpc.AuthRoleRevokePermissionResponse,
}


class AuthApplier:
    def __init__(self, store: AuthStore, lessor) -> None:
        self.store = store
        self.lessor = lessor

    def apply(self, r, which: str, index: int):
        """(True, response) for an auth entry; (False, None) when the entry may go on to the
        other appliers; raises etcd's error when the entry's user may not do it."""
        st = self.store
        ai = AuthInfo(r.header.username, r.header.auth_revision)
        if which in ADMIN:
            st.check_admin(ai)
            fn = getattr(st, "apply_" + which[len("auth_"):])
            if which in ("auth_enable", "auth_disable"):
                fn()
            else:
                fn(getattr(r, which))
            return True, _RESP[which]()
        if which == "authenticate":
            a = r.authenticate
            token = st.apply_authenticate(a.name, a.simple_token, index)
            return True, rpc.AuthenticateResponse(token=token)
        if not st.enabled:
            return False, None
        if which == "put":
            p = r.put
            st.check_put(ai, p.key)
            self._check_lease_puts(ai, p.lease)
            if p.prev_kv:
                st.check_range(ai, p.key, b"")
        elif which == "delete_range":
            d = r.delete_range
            st.check_delete(ai, d.key, d.range_end)
            if d.prev_kv:
                st.check_range(ai, d.key, d.range_end)
        elif which == "txn":
            st.check_txn(ai, r.txn)
        elif which == "lease_revoke":
            self._check_lease_puts(ai, r.lease_revoke.ID)
        return False, None

    def _check_lease_puts(self, ai, lease_id: int) -> None:
        """etcd's checkLeasePuts: the user must be able to write every key on the lease."""
        if not lease_id:
            return
        lease = self.lessor.lookup(lease_id)
        if lease is not None:
            for key in sorted(lease.keys):
                self.store.check_put(ai, key)
