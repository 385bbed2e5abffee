"""member add/remove/update/list/promote."""
from __future__ import annotations

import sys

from pyetcd.cli.base import EXIT_BAD_ARGS, EXIT_ERROR, fail
from pyetcd.cli.goutil import GoParseError, parse_uint, quote


def _rpc():
    from pyetcd._pb.etcdserverpb import rpc_pb2
    return rpc_pb2


def member_id(ctx) -> int:
    if len(ctx.args) != 1:
        fail(EXIT_BAD_ARGS, "member ID is not provided")
    try:
        return parse_uint(ctx.args[0], 16)
    except GoParseError as e:
        fail(EXIT_BAD_ARGS, f"bad member ID arg ({e}), expecting ID in Hex")


def peer_urls(ctx) -> list[str]:
    raw = ctx.flags["peer-urls"]
    if not raw:
        fail(EXIT_BAD_ARGS, "member peer urls not provided")
    urls = raw.split(",")
    for u in urls:
        scheme, sep, rest = u.partition("://")
        if not sep or scheme not in ("http", "https", "unix", "unixs"):
            fail(EXIT_ERROR, f"URL scheme must be http, https, unix, or unixs: {u}")
        host = rest.split("/")[0]
        if scheme in ("http", "https") and ":" not in host:
            fail(EXIT_ERROR, f'URL address does not have the form "host:port": {u}')
    return urls


def _call(ctx, name, req):
    c = ctx.client()
    try:
        return c.call(name, req)
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, e)


def add_cmd(ctx):
    if len(ctx.args) != 1:
        fail(EXIT_BAD_ARGS, "member name not provided")
    name = ctx.args[0]
    urls = peer_urls(ctx)
    resp = _call(ctx, "MemberAdd", _rpc().MemberAddRequest(peerURLs=urls, isLearner=ctx.flags["learner"]))
    d = ctx.display
    d.member_add(resp)
    if d.fmt == "simple":
        new_id = resp.member.ID
        conf = []
        for m in resp.members:
            for u in m.peerURLs:
                conf.append(f"{name if m.ID == new_id else m.name}={u}")
        sys.stdout.write("\n")
        sys.stdout.write(f"ETCD_NAME={quote(name)}\n")
        sys.stdout.write(f"ETCD_INITIAL_CLUSTER={quote(','.join(conf))}\n")
        sys.stdout.write(f"ETCD_INITIAL_ADVERTISE_PEER_URLS={quote(','.join(urls))}\n")
        sys.stdout.write('ETCD_INITIAL_CLUSTER_STATE="existing"\n')


def remove_cmd(ctx):
    mid = member_id(ctx)
    resp = _call(ctx, "MemberRemove", _rpc().MemberRemoveRequest(ID=mid))
    ctx.display.member_remove(mid, resp)


def update_cmd(ctx):
    mid = member_id(ctx)
    urls = peer_urls(ctx)
    resp = _call(ctx, "MemberUpdate", _rpc().MemberUpdateRequest(ID=mid, peerURLs=urls))
    ctx.display.member_update(mid, resp)


def list_cmd(ctx):
    resp = _call(ctx, "MemberList", _rpc().MemberListRequest(linearizable=True))
    ctx.display.member_list(resp)


def promote_cmd(ctx):
    mid = member_id(ctx)
    resp = _call(ctx, "MemberPromote", _rpc().MemberPromoteRequest(ID=mid))
    ctx.display.member_promote(mid, resp)
