"""snapshot save (Maintenance.Snapshot stream to a file), snapshot status (reads the bbolt file, as
etcdutl does); snapshot restore (writing etcd's bbolt + WAL offline) is not implemented."""
from __future__ import annotations

import json
import os
import sys
import time
from struct import error as struct_error

from pyetcd.cli.base import EXIT_BAD_ARGS, EXIT_ERROR, EXIT_INTERRUPTED, fail


def _log(msg, **kw):
    rec = {"level": "info", "ts": time.time(), "caller": "snapshot/v3_snapshot.go", "msg": msg, **kw}
    sys.stderr.write(json.dumps(rec) + "\n")


def _progress(done: int, elapsed: float, final=False):
    if not sys.stderr.isatty():
        return
    rate = done / elapsed / 1e6 if elapsed > 0 else 0.0
    sys.stderr.write(f"\r{done / 1e6:.1f} MB fetched ({rate:.1f} MB/s)" + ("\n" if final else ""))
    sys.stderr.flush()


def save_cmd(ctx):
    if len(ctx.args) != 1:
        fail(EXIT_BAD_ARGS, "snapshot save expects one argument")
    eps = ctx.endpoints()
    if len(eps) != 1:
        fail(EXIT_INTERRUPTED, f"snapshot must be requested to one selected node, not multiple [{' '.join(eps)}]")
    path = ctx.args[0]
    part = path + ".part"
    c = ctx.client()
    import grpc
    from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
    from pyetcd.cli.client import to_etcd_error
    timeout = ctx.command_timeout() if "command-timeout" in ctx.flags.changed else None
    try:
        f = open(part, "wb")
    except OSError as e:
        fail(EXIT_INTERRUPTED, f"could not open {part} ({e.strerror})")
    _log("created temporary db file", path=part)
    start = time.monotonic()
    total = 0
    try:
        stream = c.server_stream("etcdserverpb.Maintenance", "Snapshot", rpc.SnapshotRequest(),
                                 rpc.SnapshotResponse, timeout=timeout)
        _log("fetching snapshot", endpoint=eps[0])
        for resp in stream:
            f.write(resp.blob)
            total += len(resp.blob)
            _progress(total, time.monotonic() - start)
        f.flush()
        os.fsync(f.fileno())
    except grpc.RpcError as e:
        f.close()
        os.unlink(part)
        fail(EXIT_INTERRUPTED, to_etcd_error(e))
    f.close()
    _progress(total, time.monotonic() - start, final=True)
    _log("fetched snapshot", endpoint=eps[0], size=total, took=round(time.monotonic() - start, 6))
    os.replace(part, path)
    _log("saved", path=path)
    sys.stdout.write(f"Snapshot saved at {path}\n")


def _deprecated(sub):
    sys.stderr.write(f"Deprecated: Use `etcdutl snapshot {sub}` instead.\n\n")


def status_cmd(ctx):
    if len(ctx.args) != 1:
        fail(EXIT_BAD_ARGS, "snapshot status requires exactly one argument")
    _deprecated("status")
    display = ctx.display
    path = ctx.args[0]
    try:
        os.stat(path)
    except OSError as e:
        fail(EXIT_ERROR, f"stat {path}: {(e.strerror or '').lower()}")
    from pyetcd.cli.bbolt import BoltError, status
    from pyetcd.cli.printer import DBStatus
    try:
        h, rev, keys, size = status(path)
    except (BoltError, OSError, struct_error) as e:
        fail(EXIT_ERROR, e)
    display.db_status(DBStatus(h, rev, keys, size))


def restore_cmd(ctx):
    if len(ctx.args) != 1:
        fail(EXIT_BAD_ARGS, "snapshot restore requires exactly one argument")
    _deprecated("restore")
    fail(EXIT_ERROR, "snapshot restore is not implemented in pyetcdctl (it writes etcd's bbolt and "
                     "WAL files offline; use `etcdutl snapshot restore`)")
