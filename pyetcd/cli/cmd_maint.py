"""alarm list/disarm, defrag, move-leader, version."""
from __future__ import annotations

import os
import sys

from pyetcd.cli.base import EXIT_BAD_ARGS, EXIT_ERROR, CliExit, fail
from pyetcd.cli.goutil import GoParseError, parse_uint


def _rpc():
    from pyetcd._pb.etcdserverpb import rpc_pb2
    return rpc_pb2


def version_cmd(ctx):
    from pyetcd.cli.help import API_VERSION, VERSION
    sys.stdout.write(f"etcdctl version: {VERSION}\nAPI version: {API_VERSION}\n")


def alarm_list_cmd(ctx):
    c = ctx.client()
    try:
        resp = c.call("Alarm", _rpc().AlarmRequest(action=0))
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, e)
    ctx.display.alarm(resp)


def alarm_disarm_cmd(ctx):
    rpc = _rpc()
    c = ctx.client()
    try:
        listed = c.call("Alarm", rpc.AlarmRequest(action=0))
        ret = rpc.AlarmResponse()
        for a in listed.alarms:
            d = c.call("Alarm", rpc.AlarmRequest(action=2, memberID=a.memberID, alarm=a.alarm))
            ret.alarms.extend(d.alarms)
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, e)
    ctx.display.alarm(ret)


def defrag_cmd(ctx):
    if ctx.flags["data-dir"]:
        # etcdctl 3.5.1 goes on to defragment the endpoints after an offline defrag (its
        # data-dir branch does not return), so a run without a reachable server exits 1.
        sys.stderr.write("Use `etcdutl defrag` instead. The --data-dir is going to be "
                         "decomissioned in v3.6.\n\n")
        _defrag_data_dir(ctx.flags["data-dir"])
    from pyetcd.cli.cmd_endpoint import endpoints_from_cluster
    eps = endpoints_from_cluster(ctx)
    failures = 0
    for ep in eps:
        try:
            c = ctx.client([ep])
            c.call("Defragment", _rpc().DefragmentRequest())
            c.close()
            sys.stdout.write(f"Finished defragmenting etcd member[{ep}]\n")
        except CliExit:
            raise
        except Exception as e:  # noqa: BLE001
            sys.stderr.write(f"Failed to defragment etcd member[{ep}] ({e})\n")
            failures += 1
    if failures:
        raise CliExit(EXIT_ERROR)


# --- defrag --data-dir: offline, as etcdutl's DefragData -------------------------------------

_SQLITE_MAGIC = b"SQLite format 3\x00"
_GO_PANIC_EXIT = 2  # a Go program that panics exits with 2


class _Raw(str):
    """A log field value written as is (zap writes durations as bare numbers)."""


def _zap(level: str, caller: str, msg: str, **fields) -> None:
    """A line of etcdutl's console logger on stderr: time, level, caller, message, fields."""
    import datetime
    import json
    now = datetime.datetime.now().astimezone()
    off = now.strftime("%z")
    ts = now.strftime("%Y-%m-%dT%H:%M:%S") + ("Z" if off in ("+0000", "") else off[:3] + ":" + off[3:])
    body = ", ".join(f"{json.dumps(k)}: " + (v if isinstance(v, _Raw) else json.dumps(v, ensure_ascii=False))
                     for k, v in fields.items())
    sys.stderr.write(f"{ts}\t{level}\t{caller}\t{msg}\t{{{body}}}\n")


def _seconds(t: float) -> _Raw:
    """zap's duration in seconds: a float64 without exponent."""
    from decimal import Decimal
    return _Raw(format(Decimal(repr(round(t * 1e9) / 1e9)), "f"))


def _panic_open(dbp: str, err) -> None:
    """etcd's backend panics (Go exit code 2) when it cannot open the db file."""
    _zap("panic", "backend/backend.go:182", "failed to open database", path=dbp, error=str(err))
    sys.stderr.write("panic: failed to open database\n")
    raise CliExit(_GO_PANIC_EXIT)


def _sizes_fields(before, after=None) -> dict:
    from pyetcd.cli.goutil import humanize_bytes
    size, in_use = after or before
    f = {}
    if after:
        f["current-db-size-bytes-diff"] = size - before[0]
    f["current-db-size-bytes"] = size
    f["current-db-size"] = humanize_bytes(size)
    if after:
        f["current-db-size-in-use-bytes-diff"] = in_use - before[1]
    f["current-db-size-in-use-bytes"] = in_use
    f["current-db-size-in-use"] = humanize_bytes(in_use)
    return f


def _defrag_data_dir(data_dir: str) -> None:
    import posixpath
    import time
    from pyetcd.bolt import BoltError
    from pyetcd.bolt.defrag import defrag_file, init_if_empty, lock_file, usage
    from pyetcd.cli.goutil import quote
    dbp = posixpath.normpath(posixpath.join(data_dir, "member", "snap", "db"))
    if dbp.startswith("//"):
        dbp = dbp[1:]

    def waiting():
        sys.stderr.write(f"waiting for etcd to close and release its lock on {quote(dbp)}. "
                         "To defrag a running etcd instance, omit --data-dir.\n")
    try:
        with open(dbp, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        head = b""
    except OSError as e:
        _panic_open(dbp, f"open {dbp}: {(e.strerror or str(e)).lower()}")
    if head == _SQLITE_MAGIC:
        return _defrag_sqlite(data_dir, dbp)
    try:
        fd = lock_file(dbp, on_wait=waiting)
    except OSError as e:
        _panic_open(dbp, f"open {dbp}: {(e.strerror or str(e)).lower()}")
    try:
        try:
            init_if_empty(dbp)
            before = usage(dbp)
        except (BoltError, ValueError) as e:
            _panic_open(dbp, e)
        except OSError as e:
            _panic_open(dbp, f"{dbp}: {(e.strerror or str(e)).lower()}")
        _zap("info", "backend/backend.go:481", "defragmenting", path=dbp, **_sizes_fields(before))
        start = time.monotonic()
        try:
            defrag_file(dbp)
        except (BoltError, OSError, ValueError) as e:
            fail(EXIT_ERROR, e)
        took = time.monotonic() - start
        after = usage(dbp)
        _zap("info", "backend/backend.go:539", "finished defragmenting directory", path=dbp,
             **_sizes_fields(before, after), took=_seconds(took))
    finally:
        os.close(fd)


def _defrag_sqlite(data_dir: str, dbp: str) -> None:
    """A pyetcd data dir keeps a SQLite backend at member/snap/db: checkpoint and VACUUM it.
    A running pyetcd server holds the flock on member/wal, so a locked WAL dir means in use."""
    import fcntl
    import sqlite3
    import time
    wal_dir = os.path.join(data_dir, "member", "wal")
    lock_fd = None
    if os.path.isdir(wal_dir):
        lock_fd = os.open(wal_dir, os.O_RDONLY)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            fail(EXIT_ERROR, f"{dbp} is in use by a running pyetcd server (it holds the lock on "
                             f"{wal_dir}); stop it first, or omit --data-dir to defragment it "
                             "over the network")

    def sizes(conn):
        pages, free, psize = (conn.execute(f"PRAGMA {p}").fetchone()[0]
                              for p in ("page_count", "freelist_count", "page_size"))
        return pages * psize, (pages - free) * psize
    try:
        conn = sqlite3.connect(dbp, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            before = sizes(conn)
            _zap("info", "backend/backend.go:481", "defragmenting", path=dbp,
                 **_sizes_fields(before))
            start = time.monotonic()
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            took = time.monotonic() - start
            after = sizes(conn)
        finally:
            conn.close()
        _zap("info", "backend/backend.go:539", "finished defragmenting directory", path=dbp,
             **_sizes_fields(before, after), took=_seconds(took))
    except sqlite3.Error as e:
        fail(EXIT_ERROR, f"{dbp}: {e}")
    finally:
        if lock_fd is not None:
            os.close(lock_fd)


def move_leader_cmd(ctx):
    if len(ctx.args) != 1:
        fail(EXIT_BAD_ARGS, "move-leader command needs 1 argument")
    try:
        target = parse_uint(ctx.args[0], 16)
    except GoParseError as e:
        fail(EXIT_BAD_ARGS, e)
    eps = ctx.endpoints()
    rpc = _rpc()
    leader_cli, leader_id = None, 0
    for ep in eps:
        c = ctx.client([ep])
        try:
            st = c.call("Status", rpc.StatusRequest())
        except Exception as e:  # noqa: BLE001
            fail(EXIT_ERROR, e)
        if st.header.member_id == st.leader:
            leader_cli, leader_id = c, st.leader
            break
        c.close()
    if leader_cli is None:
        fail(EXIT_BAD_ARGS, f"no leader endpoint given at [{' '.join(eps)}]")
    try:
        resp = leader_cli.call("MoveLeader", rpc.MoveLeaderRequest(targetID=target))
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, e)
    ctx.display.move_leader(leader_id, target, resp)
