"""lease grant/revoke/timetolive/list/keep-alive."""
from __future__ import annotations

import sys

from pyetcd.cli.base import EXIT_BAD_ARGS, EXIT_BAD_CONNECTION, EXIT_ERROR, fail
from pyetcd.cli.goutil import GoParseError, parse_int


def lease_from_arg(arg: str) -> int:
    try:
        return parse_int(arg, 16)
    except GoParseError as e:
        fail(EXIT_BAD_ARGS, f"bad lease ID arg ({e}), expecting ID in Hex")


def _rpc():
    from pyetcd._pb.etcdserverpb import rpc_pb2
    return rpc_pb2


def grant_cmd(ctx):
    if len(ctx.args) != 1:
        fail(EXIT_BAD_ARGS, "lease grant command needs TTL argument")
    try:
        ttl = parse_int(ctx.args[0], 10)
    except GoParseError as e:
        fail(EXIT_BAD_ARGS, f"bad TTL ({e})")
    c = ctx.client()
    try:
        resp = c.call("LeaseGrant", _rpc().LeaseGrantRequest(TTL=ttl))
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, f"failed to grant lease ({e})")
    ctx.display.grant(resp)


def revoke_cmd(ctx):
    if len(ctx.args) != 1:
        fail(EXIT_BAD_ARGS, "lease revoke command needs 1 argument")
    lid = lease_from_arg(ctx.args[0])
    c = ctx.client()
    try:
        resp = c.call("LeaseRevoke", _rpc().LeaseRevokeRequest(ID=lid))
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, f"failed to revoke lease ({e})")
    ctx.display.revoke(lid, resp)


def timetolive_cmd(ctx):
    if len(ctx.args) != 1:
        fail(EXIT_BAD_ARGS, "lease timetolive command needs lease ID as argument")
    lid = lease_from_arg(ctx.args[0])
    c = ctx.client()
    try:
        resp = c.call("LeaseTimeToLive", _rpc().LeaseTimeToLiveRequest(ID=lid, keys=ctx.flags["keys"]))
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, f"failed to retrieve lease information ({e})")
    ctx.display.time_to_live(resp, ctx.flags["keys"])


def list_cmd(ctx):
    c = ctx.client()
    try:
        resp = c.call("LeaseLeases", _rpc().LeaseLeasesRequest())
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, f"failed to list leases ({e})")
    ctx.display.leases(resp)


def keepalive_cmd(ctx):
    if len(ctx.args) != 1:
        fail(EXIT_BAD_ARGS, "lease keep-alive command needs lease ID as argument")
    lid = lease_from_arg(ctx.args[0])
    c = ctx.client()
    rpc = _rpc()
    from pyetcd.cli.client import to_etcd_error
    import grpc
    import queue
    import threading

    q: "queue.Queue" = queue.Queue()

    def requests():
        while True:
            item = q.get()
            if item is None:
                return
            yield rpc.LeaseKeepAliveRequest(ID=lid)

    display = ctx.display
    if ctx.flags["once"]:
        q.put(1)
        stream = c.stream("etcdserverpb.Lease", "LeaseKeepAlive", requests(), rpc.LeaseKeepAliveResponse,
                          timeout=ctx.command_timeout())
        try:
            resp = next(stream)
        except grpc.RpcError as e:
            fail(EXIT_BAD_CONNECTION, to_etcd_error(e))
        finally:
            q.put(None)
        if resp.TTL <= 0:
            fail(EXIT_BAD_CONNECTION, "etcdserver: requested lease not found")
        display.keep_alive(resp)
        return
    stream = c.stream("etcdserverpb.Lease", "LeaseKeepAlive", requests(), rpc.LeaseKeepAliveResponse)

    # clientv3 renews at once, then TTL/3 after each answer
    timers = []
    q.put(1)
    try:
        for resp in stream:
            if resp.TTL <= 0:
                break
            display.keep_alive(resp)
            sys.stdout.flush()
            t = threading.Timer(max(resp.TTL / 3.0, 0.5), q.put, [1])
            t.daemon = True
            t.start()
            timers.append(t)
    except grpc.RpcError as e:
        fail(EXIT_BAD_CONNECTION, to_etcd_error(e))
    for t in timers:
        t.cancel()
    q.put(None)
    if display.fmt == "simple":
        sys.stdout.write(f"lease {lid:016x} expired or revoked.\n")
