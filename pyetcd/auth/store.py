"""etcd 3.5's auth store: users, roles, permissions, the auth revision and the enabled flag.

Data lives in the backend in etcd's formats, so snapshots carry it and etcd can read it:
bucket `authUsers` (key = user name, value = authpb.User), `authRoles` (key = role name,
value = authpb.Role) and `auth` (`authEnabled` = 0x01 or 0x00, `authRevision` = 8-byte big-endian
counter, 1 on a new store). Every mutation arrives through the raft log and is applied on every
member in log order (apply_* methods); reads and permission checks are local.

Password hashes are bcrypt (etcd's golang.org/x/crypto/bcrypt, `$2a$`, cost `--bcrypt-cost`);
the member that receives UserAdd/UserChangePassword hashes the password and the log carries only
the hash, base64-encoded in `hashedPassword` (etcd 3.5).
"""
from __future__ import annotations

import base64
import struct

from pyetcd import errors
from pyetcd.pb import auth as authpb
from pyetcd.pb import rpc

from .perms import READ, READWRITE, WRITE, UnifiedPerms
from .tokens import SimpleTokens

ROOT = "root"
B_AUTH, B_USERS, B_ROLES = "auth", "authUsers", "authRoles"
K_ENABLED, K_REVISION = b"authEnabled", b"authRevision"
BCRYPT_MIN, BCRYPT_MAX, BCRYPT_DEFAULT = 4, 31, 10

__all__ = ["AuthInfo", "AuthStore", "READ", "WRITE", "READWRITE", "ROOT"]


class AuthInfo:
    __slots__ = ("username", "revision")

    def __init__(self, username: str = "", revision: int = 0) -> None:
        self.username = username
        self.revision = revision


def hash_password(password: str, cost: int) -> str:
    """etcd's UserAdd/UserChangePassword front half: bcrypt, base64 for the log entry."""
    import bcrypt
    h = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost, prefix=b"2a"))
    return base64.b64encode(h).decode()


def check_password(hashed: bytes, password: str) -> bool:
    import bcrypt
    try:
        return bcrypt.checkpw(password.encode(), hashed)
    except ValueError:  # not a bcrypt hash (e.g. empty)
        return False


class AuthStore:
    def __init__(self, backend, *, bcrypt_cost: int = BCRYPT_DEFAULT, token_ttl: float = 300,
                 token_type: str = "simple", logger=None, tokens: SimpleTokens | None = None) -> None:
        self.be = backend
        self.lg = logger
        if not BCRYPT_MIN <= bcrypt_cost <= BCRYPT_MAX:
            bcrypt_cost = BCRYPT_DEFAULT
        self.bcrypt_cost = bcrypt_cost
        self.token_type = token_type.split(",")[0]
        self.tokens = tokens or SimpleTokens(token_ttl)  # kept across a snapshot install, as etcd's Recover
        for b in (B_AUTH, B_USERS, B_ROLES):
            backend.create_bucket(b)
        self._perm_cache: dict[str, UnifiedPerms] = {}
        self.enabled = backend.get(B_AUTH, K_ENABLED) == b"\x01"
        raw = backend.get(B_AUTH, K_REVISION)
        self.revision = struct.unpack(">Q", raw)[0] if raw and len(raw) == 8 else 0
        if self.revision == 0:
            self._commit_revision()
        if self.enabled:
            self.tokens.enable()
        else:
            self.tokens.disable()

    # ---- backend helpers -----------------------------------------------------------------
    def _commit_revision(self) -> None:
        self.revision += 1
        self.be.put(B_AUTH, K_REVISION, struct.pack(">Q", self.revision))

    def get_user(self, name: str):
        raw = self.be.get(B_USERS, name.encode())
        return None if raw is None else authpb.User.FromString(raw)

    def get_role(self, name: str):
        raw = self.be.get(B_ROLES, name.encode())
        return None if raw is None else authpb.Role.FromString(raw)

    def _put_user(self, u) -> None:
        self.be.put(B_USERS, bytes(u.name), u.SerializeToString())

    def _put_role(self, r) -> None:
        self.be.put(B_ROLES, bytes(r.name), r.SerializeToString())

    def user_names(self) -> list[str]:
        return [k.decode("utf-8", "replace") for k, _ in self.be.range(B_USERS)]

    def role_names(self) -> list[str]:
        return [k.decode("utf-8", "replace") for k, _ in self.be.range(B_ROLES)]

    def _clear_cache(self, user: str | None = None) -> None:
        if user is None:
            self._perm_cache.clear()
        else:
            self._perm_cache.pop(user, None)

    # ---- applied mutations (through the raft log, on every member) -----------------------
    def apply_enable(self) -> None:
        if self.enabled:
            return
        u = self.get_user(ROOT)
        if u is None:
            raise errors.ErrRootUserNotExist
        if ROOT not in u.roles:
            raise errors.ErrRootRoleNotExist
        self.be.put(B_AUTH, K_ENABLED, b"\x01")
        self.enabled = True
        self.tokens.enable()
        self._clear_cache()

    def apply_disable(self) -> None:
        if not self.enabled:
            return
        self.be.put(B_AUTH, K_ENABLED, b"\x00")
        self._commit_revision()
        self.enabled = False
        self.tokens.disable()

    def apply_authenticate(self, name: str, prefix: str, index: int) -> str:
        if not self.enabled:
            raise errors.ErrAuthNotEnabled
        u = self.get_user(name)
        if u is None or (u.HasField("options") and u.options.no_password):
            raise errors.ErrAuthFailed
        return self.tokens.assign(prefix, index, name)

    def apply_user_add(self, r) -> None:
        if not r.name:
            raise errors.ErrUserEmpty
        if self.get_user(r.name) is not None:
            raise errors.ErrUserAlreadyExist
        u = authpb.User(name=r.name.encode())
        u.options.no_password = r.options.no_password
        if not r.options.no_password:
            u.password = self._select_password(r.password, r.hashedPassword)
        self._put_user(u)
        self._commit_revision()

    def _select_password(self, password: str, hashed: str) -> bytes:
        if password and not hashed:  # an entry hashed at apply (etcd before 3.5)
            return base64.b64decode(hash_password(password, self.bcrypt_cost))
        try:
            return base64.b64decode(hashed, validate=True)
        except ValueError:
            raise errors.ErrNoPasswordUser from None

    def apply_user_delete(self, r) -> None:
        if self.enabled and r.name == ROOT:
            raise errors.ErrInvalidAuthMgmt
        if self.get_user(r.name) is None:
            raise errors.ErrUserNotFound
        self.be.delete(B_USERS, r.name.encode())
        self._commit_revision()
        self._clear_cache(r.name)
        self.tokens.invalidate_user(r.name)

    def apply_user_change_password(self, r) -> None:
        u = self.get_user(r.name)
        if u is None:
            raise errors.ErrUserNotFound
        if not u.options.no_password:
            u.password = self._select_password(r.password, r.hashedPassword)
        else:
            u.password = b""
        self._put_user(u)
        self._commit_revision()
        self._clear_cache(r.name)
        self.tokens.invalidate_user(r.name)

    def apply_user_grant_role(self, r) -> None:
        u = self.get_user(r.user)
        if u is None:
            raise errors.ErrUserNotFound
        if r.role != ROOT and self.get_role(r.role) is None:
            raise errors.ErrRoleNotFound
        if r.role in u.roles:
            return  # etcd: "ignored grant role request to a user", revision unchanged
        roles = sorted([*u.roles, r.role])
        del u.roles[:]
        u.roles.extend(roles)
        self._put_user(u)
        self._clear_cache(r.user)
        self._commit_revision()

    def apply_user_revoke_role(self, r) -> None:
        if self.enabled and r.name == ROOT and r.role == ROOT:
            raise errors.ErrInvalidAuthMgmt
        u = self.get_user(r.name)
        if u is None:
            raise errors.ErrUserNotFound
        kept = [x for x in u.roles if x != r.role]
        if len(kept) == len(u.roles):
            raise errors.ErrRoleNotGranted
        del u.roles[:]
        u.roles.extend(kept)
        self._put_user(u)
        self._clear_cache(r.name)
        self._commit_revision()

    def apply_role_add(self, r) -> None:
        if not r.name:
            raise errors.ErrRoleEmpty
        if self.get_role(r.name) is not None:
            raise errors.ErrRoleAlreadyExist
        self._put_role(authpb.Role(name=r.name.encode()))
        self._commit_revision()

    def apply_role_delete(self, r) -> None:
        if self.enabled and r.role == ROOT:
            raise errors.ErrInvalidAuthMgmt
        if self.get_role(r.role) is None:
            raise errors.ErrRoleNotFound
        self.be.delete(B_ROLES, r.role.encode())
        for _, raw in list(self.be.range(B_USERS)):
            u = authpb.User.FromString(raw)
            if r.role in u.roles:
                kept = [x for x in u.roles if x != r.role]
                del u.roles[:]
                u.roles.extend(kept)
                self._put_user(u)
                self._clear_cache(u.name.decode("utf-8", "replace"))
        self._commit_revision()

    def apply_role_grant_permission(self, r) -> None:
        if not r.HasField("perm"):
            raise errors.ErrPermissionNotGiven
        role = self.get_role(r.name)
        if role is None:
            raise errors.ErrRoleNotFound
        perms = list(role.keyPermission)
        idx = next((i for i, p in enumerate(perms) if p.key >= r.perm.key), len(perms))
        if idx < len(perms) and perms[idx].key == r.perm.key and perms[idx].range_end == r.perm.range_end:
            perms[idx].permType = r.perm.permType
        else:
            perms.append(authpb.Permission(key=r.perm.key, range_end=r.perm.range_end, permType=r.perm.permType))
            perms = _go_sort_by_key(perms)
        new = authpb.Role(name=role.name, keyPermission=perms)
        self._put_role(new)
        self._clear_cache()
        self._commit_revision()

    def apply_role_revoke_permission(self, r) -> None:
        role = self.get_role(r.role)
        if role is None:
            raise errors.ErrRoleNotFound
        kept = [p for p in role.keyPermission if not (p.key == r.key and p.range_end == r.range_end)]
        if len(kept) == len(role.keyPermission):
            raise errors.ErrPermissionNotGranted
        self._put_role(authpb.Role(name=role.name, keyPermission=kept))
        self._clear_cache()
        self._commit_revision()

    # ---- local reads ---------------------------------------------------------------------
    def user_get(self, name: str) -> list[str]:
        u = self.get_user(name)
        if u is None:
            raise errors.ErrUserNotFound
        return list(u.roles)

    def role_get(self, name: str) -> list:
        role = self.get_role(name)
        if role is None:
            raise errors.ErrRoleNotFound
        if name == ROOT:  # etcd reports the root role as read-write on every key
            return [authpb.Permission(permType=READWRITE, key=b"", range_end=b"\x00")]
        return list(role.keyPermission)

    def has_role(self, user: str, role: str) -> bool:
        u = self.get_user(user)
        return u is not None and role in u.roles

    def password_of(self, name: str) -> tuple[bytes, int]:
        """The first half of etcd's CheckPassword (before the Authenticate entry is proposed):
        the user's hash and the auth revision it was read at. bcrypt runs apart, off the loop."""
        if not self.enabled:
            raise errors.ErrAuthNotEnabled
        u = self.get_user(name)
        if u is None:
            raise errors.ErrAuthFailed
        if u.options.no_password:
            raise errors.ErrNoPasswordUser
        return bytes(u.password), self.revision

    # ---- permission checks ---------------------------------------------------------------
    def info_from_token(self, token: str) -> AuthInfo | None:
        user = self.tokens.user_of(token)
        return None if user is None else AuthInfo(user, self.revision)

    def _perms(self, user) -> UnifiedPerms:
        name = user.name.decode("utf-8", "replace")
        got = self._perm_cache.get(name)
        if got is None:
            roles = [r for r in (self.get_role(n) for n in user.roles) if r is not None]
            got = self._perm_cache[name] = UnifiedPerms(roles)
        return got

    def check_op(self, ai: AuthInfo | None, key: bytes, range_end: bytes, perm_type: int) -> None:
        """etcd's isOpPermitted: raise unless `ai` may read/write [key, range_end)."""
        if not self.enabled:
            return
        if ai is None or ai.revision == 0:
            raise errors.ErrUserEmpty
        if ai.revision < self.revision:
            raise errors.ErrAuthOldRevision
        u = self.get_user(ai.username)
        if u is None:
            raise errors.ErrPermissionDenied
        if ROOT in u.roles:
            return
        if not self._perms(u).permitted(key, range_end, perm_type):
            raise errors.ErrPermissionDenied

    def check_range(self, ai, key: bytes, range_end: bytes) -> None:
        self.check_op(ai, key, range_end, READ)

    def check_put(self, ai, key: bytes) -> None:
        self.check_op(ai, key, b"", WRITE)

    def check_delete(self, ai, key: bytes, range_end: bytes) -> None:
        self.check_op(ai, key, range_end, WRITE)

    def check_admin(self, ai: AuthInfo | None) -> None:
        if not self.enabled:
            return
        if ai is None or not ai.username:
            raise errors.ErrUserEmpty
        u = self.get_user(ai.username)
        if u is None:
            raise errors.ErrUserNotFound
        if ROOT not in u.roles:
            raise errors.ErrPermissionDenied

    def check_txn(self, ai, t) -> None:
        """etcd's checkTxnAuth: compares need read; ops need what they do."""
        for c in t.compare:
            self.check_range(ai, c.key, c.range_end)
        for ops in (t.success, t.failure):
            for op in ops:
                which = op.WhichOneof("request")
                if which == "request_range":
                    self.check_range(ai, op.request_range.key, op.request_range.range_end)
                elif which == "request_put":
                    self.check_put(ai, op.request_put.key)
                elif which == "request_delete_range":
                    d = op.request_delete_range
                    if d.prev_kv:
                        self.check_range(ai, d.key, d.range_end)
                    self.check_delete(ai, d.key, d.range_end)
                elif which == "request_txn":
                    self.check_txn(ai, op.request_txn)


def _go_sort_by_key(perms: list) -> list:
    """Permissions in key order as Go's sort.Sort leaves them (equal keys: Go's unstable order)."""
    from pyetcd.server.apply.gosort import go_sort
    go_sort(perms, lambda a, b: a.key < b.key)
    return perms


def status(store: AuthStore) -> rpc.AuthStatusResponse:
    return rpc.AuthStatusResponse(enabled=store.enabled, authRevision=store.revision)
