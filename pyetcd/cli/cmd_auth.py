"""auth enable/disable/status, user and role subcommands."""
from __future__ import annotations

import os
import sys

from pyetcd.cli.base import EXIT_BAD_ARGS, EXIT_ERROR, fail
from pyetcd.cli.printer_simple import range_end_prefix


def _rpc():
    from pyetcd._pb.etcdserverpb import rpc_pb2
    return rpc_pb2


def _call(ctx, name, req, code=EXIT_ERROR):
    c = ctx.client()
    try:
        return c.call(name, req)
    except Exception as e:  # noqa: BLE001
        fail(code, e)


def _nargs(ctx, n, msg):
    if len(ctx.args) != n:
        fail(EXIT_BAD_ARGS, msg)


# --- auth ------------------------------------------------------------------------------------

def auth_enable_cmd(ctx):
    _nargs(ctx, 0, "auth enable command does not accept any arguments")
    rpc = _rpc()
    c = ctx.client()
    err = None
    while True:
        try:
            c.call("AuthEnable", rpc.AuthEnableRequest())
            err = None
            break
        except Exception as e:  # noqa: BLE001
            err = e
        if str(err) != "etcdserver: root user does not have root role":
            break
        try:
            c.call("RoleAdd", rpc.AuthRoleAddRequest(name="root"))
            c.call("UserGrantRole", rpc.AuthUserGrantRoleRequest(user="root", role="root"))
        except Exception as e:  # noqa: BLE001
            err = e
            break
    if err is not None:
        fail(EXIT_ERROR, err)
    sys.stdout.write("Authentication Enabled\n")


def auth_disable_cmd(ctx):
    _nargs(ctx, 0, "auth disable command does not accept any arguments")
    _call(ctx, "AuthDisable", _rpc().AuthDisableRequest())
    sys.stdout.write("Authentication Disabled\n")


def auth_status_cmd(ctx):
    _nargs(ctx, 0, "auth status command does not accept any arguments")
    ctx.display.auth_status(_call(ctx, "AuthStatus", _rpc().AuthStatusRequest()))


# --- user ------------------------------------------------------------------------------------

def read_password_interactive(name: str) -> str:
    prompt1 = f"Password of {name}: "
    pw1 = _read_secret(prompt1)
    if not pw1:
        fail(EXIT_BAD_ARGS, "empty password")
    pw2 = _read_secret(f"Type password of {name} again for confirmation: ")
    if pw1 != pw2:
        fail(EXIT_BAD_ARGS, "given passwords are different")
    return pw1


def _read_secret(prompt: str) -> str:
    sys.stdout.write(prompt)
    sys.stdout.flush()
    if os.isatty(0):
        import getpass
        try:
            return getpass.getpass("")
        except EOFError:
            return ""
    line = sys.stdin.readline()
    sys.stdout.write("\n")  # the terminal-less prompt still ends its line, as speakeasy does
    return line.rstrip("\n")


def _scan_word() -> str:
    """fmt.Scanf("%s"): the first whitespace-delimited word of stdin."""
    line = sys.stdin.readline()
    parts = line.split()
    return parts[0] if parts else ""


def user_add_cmd(ctx):
    _nargs(ctx, 1, "user add command requires user name as its argument")
    f, arg = ctx.flags, ctx.args[0]
    no_password = f["no-password"]
    if no_password:
        user, password = arg, ""
    elif f["new-user-password"]:
        user, password = arg, f["new-user-password"]
    else:
        user, sep, password = arg.partition(":")
        if not sep:
            user = arg
            password = read_password_interactive(arg) if f["interactive"] else _scan_word()
        elif not user:
            fail(EXIT_BAD_ARGS, "empty user name is not allowed")
    rpc = _rpc()
    req = rpc.AuthUserAddRequest(name=user, password=password)
    if no_password:
        req.options.no_password = True
    ctx.display.user_add(user, _call(ctx, "UserAdd", req))


def user_delete_cmd(ctx):
    _nargs(ctx, 1, "user delete command requires user name as its argument")
    name = ctx.args[0]
    ctx.display.user_delete(name, _call(ctx, "UserDelete", _rpc().AuthUserDeleteRequest(name=name)))


def user_get_cmd(ctx):
    _nargs(ctx, 1, "user get command requires user name as its argument")
    name = ctx.args[0]
    rpc = _rpc()
    resp = _call(ctx, "UserGet", rpc.AuthUserGetRequest(name=name))
    if ctx.flags["detail"]:
        sys.stdout.write(f"User: {name}\n")
        for role in resp.roles:
            sys.stdout.write("\n")
            rr = _call(ctx, "RoleGet", rpc.AuthRoleGetRequest(role=role))
            ctx.display.role_get(role, rr)
        return
    ctx.display.user_get(name, resp)


def user_list_cmd(ctx):
    _nargs(ctx, 0, "user list command requires no arguments")
    ctx.display.user_list(_call(ctx, "UserList", _rpc().AuthUserListRequest()))


def user_passwd_cmd(ctx):
    _nargs(ctx, 1, "user passwd command requires user name as its argument")
    name = ctx.args[0]
    password = read_password_interactive(name) if ctx.flags["interactive"] else _scan_word()
    resp = _call(ctx, "UserChangePassword", _rpc().AuthUserChangePasswordRequest(name=name, password=password))
    ctx.display.user_change_password(resp)


def user_grant_cmd(ctx):
    _nargs(ctx, 2, "user grant command requires user name and role name as its argument")
    user, role = ctx.args
    resp = _call(ctx, "UserGrantRole", _rpc().AuthUserGrantRoleRequest(user=user, role=role))
    ctx.display.user_grant_role(user, role, resp)


def user_revoke_cmd(ctx):
    _nargs(ctx, 2, "user revoke-role requires user name and role name as its argument")
    user, role = ctx.args
    resp = _call(ctx, "UserRevokeRole", _rpc().AuthUserRevokeRoleRequest(name=user, role=role))
    ctx.display.user_revoke_role(user, role, resp)


# --- role ------------------------------------------------------------------------------------

def role_add_cmd(ctx):
    _nargs(ctx, 1, "role add command requires role name as its argument")
    role = ctx.args[0]
    ctx.display.role_add(role, _call(ctx, "RoleAdd", _rpc().AuthRoleAddRequest(name=role)))


def role_delete_cmd(ctx):
    _nargs(ctx, 1, "role delete command requires role name as its argument")
    role = ctx.args[0]
    ctx.display.role_delete(role, _call(ctx, "RoleDelete", _rpc().AuthRoleDeleteRequest(role=role)))


def role_get_cmd(ctx):
    _nargs(ctx, 1, "role get command requires role name as its argument")
    role = ctx.args[0]
    ctx.display.role_get(role, _call(ctx, "RoleGet", _rpc().AuthRoleGetRequest(role=role)))


def role_list_cmd(ctx):
    _nargs(ctx, 0, "role list command requires no arguments")
    ctx.display.role_list(_call(ctx, "RoleList", _rpc().AuthRoleListRequest()))


def _range_end_from_flags(ctx, args) -> bytes:
    prefix, from_key = ctx.flags["prefix"], ctx.flags["from-key"]
    if len(args) == 1:
        if prefix:
            if from_key:
                fail(EXIT_BAD_ARGS, "--from-key and --prefix flags are mutually exclusive")
            return range_end_prefix(os.fsencode(args[0]))
        return b"\x00" if from_key else b""
    if prefix:
        fail(EXIT_BAD_ARGS, "unexpected endkey argument with --prefix flag")
    if from_key:
        fail(EXIT_BAD_ARGS, "unexpected endkey argument with --from-key flag")
    return os.fsencode(args[1])


def perm_range(ctx, args) -> tuple[bytes, bytes]:
    key = os.fsencode(args[0])
    if not key:
        prefix, from_key = ctx.flags["prefix"], ctx.flags["from-key"]
        if prefix and from_key:
            fail(EXIT_BAD_ARGS, "--from-key and --prefix flags are mutually exclusive")
        return b"\x00", (b"\x00" if prefix or from_key else b"")
    return key, _range_end_from_flags(ctx, args)


def role_grant_cmd(ctx):
    args = ctx.args
    if len(args) < 3:
        fail(EXIT_BAD_ARGS, "role grant command requires role name, permission type, and key [endkey] as its argument")
    types = {"READ": 0, "WRITE": 1, "READWRITE": 2}
    perm = types.get(args[1].upper())
    if perm is None:
        fail(EXIT_BAD_ARGS, f"invalid permission type: {args[1]}")
    key, end = perm_range(ctx, args[2:])
    from pyetcd._pb.authpb import auth_pb2
    req = _rpc().AuthRoleGrantPermissionRequest(
        name=args[0], perm=auth_pb2.Permission(permType=perm, key=key, range_end=end))
    ctx.display.role_grant_permission(args[0], _call(ctx, "RoleGrantPermission", req))


def role_revoke_cmd(ctx):
    args = ctx.args
    if len(args) < 2:
        fail(EXIT_BAD_ARGS, "role revoke-permission command requires role name and key [endkey] as its argument")
    key, end = perm_range(ctx, args[1:])
    req = _rpc().AuthRoleRevokePermissionRequest(role=args[0], key=key, range_end=end)
    resp = _call(ctx, "RoleRevokePermission", req)
    ctx.display.role_revoke_permission(args[0], os.fsencode(args[1]), end, resp)
