"""The auth store's pure parts: merged permissions (etcd's range permission cache), simple
tokens, and the bytes it leaves in etcd's buckets."""
import struct

import pytest

from pyetcd import errors
from pyetcd.auth.perms import READ, READWRITE, WRITE, UnifiedPerms
from pyetcd.auth.store import AuthInfo, AuthStore
from pyetcd.auth.tokens import SimpleTokens
from pyetcd.pb import auth as authpb
from pyetcd.pb import rpc
from pyetcd.storage.backend import Backend


def _role(*perms):
    return authpb.Role(name=b"r", keyPermission=[authpb.Permission(permType=t, key=k, range_end=e)
                                                  for t, k, e in perms])


def test_merged_permissions_follow_etcds_interval_rules():
    p = UnifiedPerms([_role((READ, b"a", b"c"), (READ, b"c", b"e"), (WRITE, b"k", b""), (READ, b"x", b"\x00"))])
    assert p.permitted(b"b", b"", READ) and p.permitted(b"a", b"e", READ)   # adjacent ranges join
    assert not p.permitted(b"a", b"f", READ) and not p.permitted(b"0", b"b", READ)
    assert p.permitted(b"k", b"", WRITE) and not p.permitted(b"k", b"", READ)
    assert p.permitted(b"k", b"k\x00", WRITE) and not p.permitted(b"k", b"l", WRITE)  # a key is [k, k\0)
    assert p.permitted(b"zzz", b"", READ) and p.permitted(b"x", b"\x00", READ)      # from-key to the end
    assert not p.permitted(b"w", b"\x00", READ)
    q = UnifiedPerms([_role((READ, b"a", b"c")), _role((READWRITE, b"b", b"d"))])    # across roles
    assert q.permitted(b"a", b"d", READ) and not q.permitted(b"a", b"d", WRITE) and q.permitted(b"b", b"d", WRITE)


def test_simple_tokens_expire_after_their_ttl_since_last_use():
    now = [100.0]
    t = SimpleTokens(ttl=10, now=lambda: now[0])
    t.enable()
    tok = t.assign(SimpleTokens.gen_prefix(), 42, "alice")
    assert SimpleTokens.index_of(tok) == 42 and len(tok.split(".")[0]) == 16
    now[0] += 9
    assert t.user_of(tok) == "alice"       # use resets the deadline
    now[0] += 9
    assert t.user_of(tok) == "alice"
    now[0] += 10
    assert t.user_of(tok) is None
    assert SimpleTokens.index_of("nodot") is None and SimpleTokens.index_of("a.b") is None
    tok = t.assign("p" * 16, 7, "bob")
    t.invalidate_user("bob")
    assert t.user_of(tok) is None


def test_store_writes_etcds_buckets_and_counts_revisions(tmp_path):
    be = Backend(str(tmp_path / "db"))
    try:
        st = AuthStore(be, bcrypt_cost=4)
        assert be.get("auth", b"authRevision") == struct.pack(">Q", 1) and not st.enabled
        with pytest.raises(errors.EtcdError) as e:
            st.apply_enable()
        assert e.value is errors.ErrRootUserNotExist
        from pyetcd.auth.store import hash_password
        st.apply_user_add(rpc.AuthUserAddRequest(name="root", hashedPassword=hash_password("pw", 4)))
        st.apply_user_grant_role(rpc.AuthUserGrantRoleRequest(user="root", role="root"))
        st.apply_user_grant_role(rpc.AuthUserGrantRoleRequest(user="root", role="root"))  # no-op
        st.apply_enable()
        assert st.revision == 3 and be.get("auth", b"authEnabled") == b"\x01"
        u = authpb.User.FromString(be.get("authUsers", b"root"))
        assert u.roles == ["root"] and u.password.startswith(b"$2a$04$")
        st.apply_role_add(rpc.AuthRoleAddRequest(name="r"))
        for k in (b"b", b"a", b"c"):
            st.apply_role_grant_permission(rpc.AuthRoleGrantPermissionRequest(
                name="r", perm=authpb.Permission(permType=READ, key=k)))
        assert [p.key for p in authpb.Role.FromString(be.get("authRoles", b"r")).keyPermission] == [b"a", b"b", b"c"]
        st.check_range(AuthInfo("root", st.revision), b"any", b"")
        with pytest.raises(errors.EtcdError) as e:
            st.check_range(AuthInfo("root", st.revision - 1), b"any", b"")
        assert e.value is errors.ErrAuthOldRevision
        st.apply_disable()
        assert be.get("auth", b"authEnabled") == b"\x00" and st.revision == 8
    finally:
        be.close()


def test_expired_tokens_are_swept_when_many_were_assigned():
    now = [0.0]
    t = SimpleTokens(ttl=10, now=lambda: now[0])
    t.enable()
    for i in range(1000):
        t.assign("p" * 16, i, "u")
    now[0] = 11
    live = t.assign("q" * 16, 5000, "u")
    for i in range(30):
        t.assign("r" * 16, 6000 + i, "u")
    assert len(t._tokens) <= 31 and t.user_of(live) == "u"
