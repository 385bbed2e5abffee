"""endpoint health/status/hashkv (with --cluster)."""
from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor

from pyetcd.cli.base import EXIT_ERROR, CliExit, fail
from pyetcd.cli.goutil import format_duration


def _rpc():
    from pyetcd._pb.etcdserverpb import rpc_pb2
    return rpc_pb2


def endpoints_from_cluster(ctx, main_client: bool = True) -> list[str]:
    """etcdctl's endpointsFromCluster: --endpoints as given (never the DNS-discovered ones), or
    with --cluster the client URLs of the members that the discovered endpoints list. Commands
    that first build etcdctl's main client (status, hashkv, defrag: main_client) run discovery
    before that, and so fail on its errors; health does not."""
    if main_client:
        ctx.endpoints()
    if not ctx.flags.get("cluster"):
        return ctx.flag_endpoints()
    eps = ctx.endpoints(fresh=main_client)
    from pyetcd.cli.client import client_from_flags
    c = client_from_flags(ctx.flags, eps, auth=False)  # TLS settings apply; MemberList needs no auth
    try:
        resp = c.call("MemberList", _rpc().MemberListRequest(linearizable=True))
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, f"failed to fetch endpoints from etcd cluster member list: {e}")
    finally:
        c.close()
    out = []
    for m in resp.members:
        out.extend(m.clientURLs)
    return out


def health_cmd(ctx):
    from pyetcd.cli.printer import Health
    from pyetcd.cli.client import EtcdError
    eps = endpoints_from_cluster(ctx, main_client=False)
    display = ctx.display
    rpc = _rpc()

    def check(ep):
        start = time.monotonic()
        h = Health(ep, False, "")
        try:
            c = ctx.client([ep])
        except CliExit as e:
            h.error = e.message or ""
            h.took = format_duration(int((time.monotonic() - start) * 1e9))
            return h
        try:
            c.call("Range", rpc.RangeRequest(key=b"health"))
            h.health = True
        except EtcdError as e:
            if str(e) == "etcdserver: permission denied":
                h.health = True
            else:
                h.error = str(e)
        if h.health:
            try:
                ar = c.call("Alarm", rpc.AlarmRequest(action=0))
                if len(ar.alarms):
                    names = {1: "NOSPACE", 2: "CORRUPT"}
                    h.health = False
                    # etcdctl 3.5.1: each name followed by a space; NOSPACE counts as unhealthy too
                    h.error = "Active Alarm(s): " + "".join(names.get(a.alarm, "UNKNOWN") + " " for a in ar.alarms)
            except EtcdError as e:
                if str(e) == "etcdserver: permission denied":
                    pass
                else:
                    h.health, h.error = False, f"Unable to fetch the alarm list: {e}"
        h.took = format_duration(int((time.monotonic() - start) * 1e9))
        c.close()
        return h

    with ThreadPoolExecutor(max_workers=max(1, len(eps))) as pool:
        results = list(pool.map(check, eps))
    results.sort(key=lambda h: not h.health)  # healthy answers arrive first in etcdctl
    display.endpoint_health(results)
    if any(not h.health for h in results):
        fail(EXIT_ERROR, "unhealthy cluster")


def _per_endpoint(ctx, method, req, what):
    eps = endpoints_from_cluster(ctx)
    ctx.display  # noqa: B018 - validate --write-out first
    out, failed = [], False
    for ep in eps:
        try:
            c = ctx.client([ep])
            out.append((ep, c.call(method, req)))
            c.close()
        except CliExit:
            raise
        except Exception as e:  # noqa: BLE001
            sys.stderr.write(f"Failed to get the {what} of endpoint {ep} ({e})\n")
            failed = True
    return out, failed


def status_cmd(ctx):
    out, failed = _per_endpoint(ctx, "Status", _rpc().StatusRequest(), "status")
    ctx.display.endpoint_status(out)
    if failed:
        raise CliExit(EXIT_ERROR)


def hashkv_cmd(ctx):
    out, failed = _per_endpoint(ctx, "HashKV", _rpc().HashKVRequest(revision=ctx.flags["rev"]), "hash")
    ctx.display.endpoint_hashkv(out)
    if failed:
        raise CliExit(EXIT_ERROR)
