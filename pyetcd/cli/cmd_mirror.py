"""make-mirror: copy a key range to another cluster at one revision, then replay its updates.
Prints the running total of mirrored keys every 30 seconds, as etcdctl does."""
from __future__ import annotations

import sys
import threading

from pyetcd.cli.base import EXIT_BAD_ARGS, EXIT_ERROR, fail


def make_mirror_cmd(ctx):
    if len(ctx.args) != 1:
        fail(EXIT_BAD_ARGS, "make-mirror takes one destination argument")
    f = ctx.flags
    from pyetcd.cli.client import Client, user_password
    import grpc
    dest_creds = None
    if not f["dest-insecure-transport"] or f["dest-cacert"] or f["dest-cert"]:
        def rd(p):
            with open(p, "rb") as fh:
                return fh.read()
        dest_creds = grpc.ssl_channel_credentials(
            root_certificates=rd(f["dest-cacert"]) if f["dest-cacert"] else None,
            private_key=rd(f["dest-key"]) if f["dest-key"] else None,
            certificate_chain=rd(f["dest-cert"]) if f["dest-cert"] else None)
    duser, dpw = user_password(f["dest-user"], f["dest-password"])
    dc = Client(ctx.args[0].split(","), command_timeout=ctx.command_timeout(),
                dial_timeout=f["dial-timeout"] / 1e9, creds=dest_creds, user=duser, password=dpw)
    c = ctx.client()
    try:
        make_mirror(ctx, c, dc)
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, e)
    fail(EXIT_ERROR, "watch closed")


def make_mirror(ctx, c, dc):
    import os
    from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
    from pyetcd.cli.printer_simple import range_end_prefix
    f = ctx.flags
    if f["no-dest-prefix"] and f["dest-prefix"]:
        fail(EXIT_BAD_ARGS, "`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one")
    prefix = os.fsencode(f["prefix"])
    dest_prefix = os.fsencode(f["dest-prefix"]) if f["dest-prefix"] or f["no-dest-prefix"] else prefix
    total = [0]
    stop = threading.Event()

    def report():
        while not stop.wait(30):
            sys.stdout.write(f"{total[0]}\n")
            sys.stdout.flush()
    threading.Thread(target=report, daemon=True).start()

    def modify(key: bytes) -> bytes:
        return key.replace(prefix, dest_prefix, 1) if prefix else dest_prefix + key

    key, end = (prefix, range_end_prefix(prefix)) if prefix else (b"\x00", b"\x00")
    rev = 0
    while True:  # SyncBase: everything under the prefix at one revision, 1000 keys a page
        resp = c.call("Range", rpc.RangeRequest(key=key, range_end=end, limit=1000, revision=rev))
        rev = rev or resp.header.revision
        for kv in resp.kvs:
            dc.call("Put", rpc.PutRequest(key=modify(kv.key), value=kv.value))
            total[0] += 1
        if not resp.more or not resp.kvs:
            break
        key = resp.kvs[-1].key + b"\x00"
    from pyetcd.cli.cmd_watch import Watcher
    w = Watcher(ctx)
    w.add(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
        key=prefix or b"\x00", range_end=end, start_revision=rev + 1)), [])
    for resp in w.stream:
        if resp.created:
            continue
        if resp.compact_revision:
            raise RuntimeError("etcdserver: mvcc: required revision has been compacted")
        ops, last = [], 0
        for ev in resp.events:
            if last and ev.kv.mod_revision > last:
                dc.call("Txn", rpc.TxnRequest(success=ops))
                ops = []
            last = ev.kv.mod_revision
            if ev.type == 0:
                ops.append(rpc.RequestOp(request_put=rpc.PutRequest(key=modify(ev.kv.key), value=ev.kv.value)))
            else:
                ops.append(rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=modify(ev.kv.key))))
            total[0] += 1
        if ops:
            dc.call("Txn", rpc.TxnRequest(success=ops))
