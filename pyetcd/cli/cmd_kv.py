"""get, put, del, compaction."""
from __future__ import annotations

import os
import sys

from pyetcd.cli.base import EXIT_BAD_ARGS, EXIT_BAD_FEATURE, EXIT_ERROR, fail
from pyetcd.cli.goutil import GoParseError, parse_int
from pyetcd.cli.printer_simple import range_end_prefix


def b(s: str) -> bytes:
    """A command-line word as the bytes the user typed."""
    return os.fsencode(s)


_ORDERS = {"ASCEND": 1, "DESCEND": 2, "": 0}
_TARGETS = {"KEY": 0, "VERSION": 1, "CREATE": 2, "MODIFY": 3, "VALUE": 4, "": 0}


class _Fields:
    """RangeRequest fields, kept as plain attributes until the encoder is chosen."""

    def __init__(self):
        self.key = self.range_end = b""
        self.limit = self.revision = self.sort_order = self.sort_target = 0
        self.serializable = self.keys_only = self.count_only = False

    def message(self):
        from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
        return rpc.RangeRequest(**vars(self))


def range_request(ctx):
    f, args = ctx.flags, ctx.args
    if not args:
        fail(EXIT_BAD_ARGS, "get command needs one argument as key and an optional argument as range_end")
    if f["prefix"] and f["from-key"]:
        fail(EXIT_BAD_ARGS, "`--prefix` and `--from-key` cannot be set at the same time, choose one")
    if f["keys-only"] and f["count-only"]:
        fail(EXIT_BAD_ARGS, "`--keys-only` and `--count-only` cannot be set at the same time, choose one")
    req = _Fields()
    cons = f["consistency"]
    if cons == "s":
        req.serializable = True
    elif cons != "l":
        fail(EXIT_BAD_FEATURE, f'unknown consistency flag "{cons}"')
    key = b(args[0])
    if len(args) > 1:
        if f["prefix"] or f["from-key"]:
            fail(EXIT_BAD_ARGS, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
        req.range_end = b(args[1])
    req.limit = f["limit"]
    if f["rev"] > 0:
        req.revision = f["rev"]
    order, target = f["order"].upper(), f["sort-by"].upper()
    if order not in _ORDERS:
        fail(EXIT_BAD_FEATURE, f"bad sort order {f['order']}")
    if target not in _TARGETS:
        fail(EXIT_BAD_FEATURE, f"bad sort target {f['sort-by']}")
    t, o = _TARGETS[target], _ORDERS[order]
    if t == 0 and o == 1:
        o = 0  # clientv3.WithSort: ascending by key is the server's natural order
    req.sort_order, req.sort_target = o, t
    if f["prefix"]:
        if not key:
            key, req.range_end = b"\x00", b"\x00"
        else:
            req.range_end = range_end_prefix(key)
    if f["from-key"]:
        if not key:
            key = b"\x00"
        req.range_end = b"\x00"
    req.key = key
    req.keys_only = f["keys-only"]
    req.count_only = f["count-only"]
    return req


def get_cmd(ctx):
    req = range_request(ctx)
    c = ctx.client()
    d = ctx.display
    try:
        resp = None
        if d.fmt in ("simple", "fields"):
            # the printers here read plain attributes: decode without the protobuf runtime
            from pyetcd.cli import wire
            data = c.call_raw("/etcdserverpb.KV/Range", wire.encode_range_request(vars(req)))
            if data is not None:
                resp = wire.RangeResponse(data)
        if resp is None:
            resp = c.call("Range", req.message())
    except Exception as e:  # noqa: BLE001 - EtcdError; grpc import deferred
        fail(EXIT_ERROR, e)
    if ctx.flags["count-only"] and d.fmt != "fields":
        fail(EXIT_BAD_ARGS, "--count-only is only for `--write-out=fields`")
    if ctx.flags["print-value-only"]:
        if d.fmt != "simple":
            fail(EXIT_BAD_ARGS, "print-value-only is only for `--write-out=simple`")
        d.value_only = True
    d.get(resp)


def argv_or_stdin(args, i):
    if i < len(args):
        return b(args[i])
    data = sys.stdin.buffer.read() if not sys.stdin.closed else b""
    if not data:
        raise ValueError("no available argument and stdin")
    return data


def put_cmd(ctx):
    f, args = ctx.flags, ctx.args
    msg = "put command needs 1 argument and input from stdin or 2 arguments"
    if not args:
        fail(EXIT_BAD_ARGS, msg)
    if f["ignore-value"] and len(args) > 1:
        fail(EXIT_BAD_ARGS, "put command needs only 1 argument when 'ignore-value' is set")
    value = b""
    if not f["ignore-value"]:
        try:
            value = argv_or_stdin(args, 1)
        except (ValueError, OSError):
            fail(EXIT_BAD_ARGS, msg)
    try:
        lease = parse_int(f["lease"], 16)
    except GoParseError as e:
        fail(EXIT_BAD_ARGS, f"bad lease ID ({e}), expecting ID in Hex")
    from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
    req = rpc.PutRequest(key=b(args[0]), value=value, lease=lease, prev_kv=f["prev-kv"],
                         ignore_value=f["ignore-value"], ignore_lease=f["ignore-lease"])
    c = ctx.client()
    try:
        resp = c.call("Put", req)
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, e)
    ctx.display.put(resp)


def delete_request(ctx):
    f, args = ctx.flags, ctx.args
    if not args or len(args) > 2:
        fail(EXIT_BAD_ARGS, "del command needs one argument as key and an optional argument as range_end")
    if f["prefix"] and f["from-key"]:
        fail(EXIT_BAD_ARGS, "`--prefix` and `--from-key` cannot be set at the same time, choose one")
    from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
    req = rpc.DeleteRangeRequest()
    key = b(args[0])
    if len(args) > 1:
        if f["prefix"] or f["from-key"]:
            fail(EXIT_BAD_ARGS, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
        req.range_end = b(args[1])
    if f["prefix"]:
        if not key:
            key, req.range_end = b"\x00", b"\x00"
        else:
            req.range_end = range_end_prefix(key)
    req.prev_kv = f["prev-kv"]
    if f["from-key"]:
        if not key:
            key = b"\x00"
        req.range_end = b"\x00"
    req.key = key
    return req


def del_cmd(ctx):
    req = delete_request(ctx)
    c = ctx.client()
    try:
        resp = c.call("DeleteRange", req)
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, e)
    ctx.display.delete(resp)


def compaction_cmd(ctx):
    if len(ctx.args) != 1:
        fail(EXIT_BAD_ARGS, "compaction command needs 1 argument")
    try:
        rev = parse_int(ctx.args[0], 10)
    except GoParseError as e:
        fail(EXIT_ERROR, e)
    from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
    c = ctx.client()
    try:
        c.call("Compact", rpc.CompactionRequest(revision=rev, physical=ctx.flags["physical"]))
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, e)
    sys.stdout.write(f"compacted revision {rev}\n")
