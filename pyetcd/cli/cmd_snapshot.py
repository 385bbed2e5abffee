"""snapshot save (Maintenance.Snapshot stream to a file), snapshot status (reads the bbolt file, as
etcdutl does); snapshot restore (writes etcd's bbolt, WAL and .snap files offline, as etcdutl
does: pyetcd.etcdfmt.restore)."""
from __future__ import annotations

import json
import os
import sys
import time
from struct import error as struct_error

from pyetcd.cli.base import EXIT_BAD_ARGS, EXIT_ERROR, EXIT_INTERRUPTED, CliExit, fail


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
    _deprecated("status")  # printed first, as etcdctl 3.5.1 does, even before the argument check
    if len(ctx.args) != 1:
        fail(EXIT_BAD_ARGS, "snapshot status requires exactly one argument")
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


def _console_log(msg, fields, caller, stack=False, level="info"):
    """One line of etcdutl's logger (zap's console encoder, RFC 3339 local time)."""
    import datetime
    now = datetime.datetime.now().astimezone()
    ts = now.strftime("%Y-%m-%dT%H:%M:%S%z")
    ts = ts[:-5] + "Z" if ts.endswith("+0000") else ts[:-2] + ":" + ts[-2:]
    fields = dict(fields)
    if stack:
        import traceback
        frames = traceback.extract_stack()[:-1]  # from the caller of the logger out
        fields["stack"] = "\n".join(f"{f.name}\n\t{f.filename}:{f.lineno}" for f in reversed(frames))
    line = f"{ts}\t{level}\t{caller}\t{msg}"
    if fields:
        line += "\t" + json.dumps(fields, ensure_ascii=False)
    sys.stderr.write(line + "\n")


def restore_cmd(ctx):
    """etcdctl 3.5.1's snapshot restore: etcdutl's restore, after the deprecation notice."""
    _deprecated("restore")
    if len(ctx.args) != 1:
        fail(EXIT_BAD_ARGS, "snapshot restore requires exactly one argument")
    from pyetcd.etcdfmt.membership import ConfigError
    from pyetcd.etcdfmt.restore import OpenDatabaseError, RestoreConfig, RestoreError, restore
    get = ctx.flags.get
    cfg = RestoreConfig(
        snapshot_path=ctx.args[0], name=get("name"), output_data_dir=get("data-dir"),
        output_wal_dir=get("wal-dir"), peer_urls=get("initial-advertise-peer-urls").split(","),
        initial_cluster=get("initial-cluster"), initial_cluster_token=get("initial-cluster-token"),
        skip_hash_check=bool(get("skip-hash-check")))
    try:
        restore(cfg, log=_console_log)
    except OpenDatabaseError as e:  # etcdutl panics here (exit code 2)
        sys.stderr.write(f"panic: failed to open database\n\n{e}\n")
        raise CliExit(2) from None
    except (ConfigError, RestoreError) as e:
        fail(EXIT_ERROR, e)
    except OSError as e:  # e.g. a directory that cannot be written
        text = (e.strerror or str(e)).lower()
        fail(EXIT_ERROR, f"{e.filename}: {text}" if e.filename else text)
