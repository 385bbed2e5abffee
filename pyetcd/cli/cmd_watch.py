"""watch: one-shot, interactive (-i), and the exec form (`watch key -- cmd args`)."""
from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading

from pyetcd.cli.base import (EXIT_BAD_ARGS, EXIT_BAD_CONNECTION, EXIT_INTERRUPTED, EXIT_INVALID_INPUT,
                             CliExit, fail)
from pyetcd.cli.goutil import quote
from pyetcd.cli.printer_simple import range_end_prefix

ERR_BAD_ARGS_NUM = "bad number of arguments"
ERR_CONFLICT_ENV = "bad number of arguments (found conflicting environment key)"
ERR_SEPARATOR = "bad number of arguments (found separator --, but no commands)"


def split_watch_args(args, dash, env_key, env_range):
    watch_args = list(args if dash < 0 else args[:dash])
    exec_args = [] if dash < 0 else list(args[dash:])
    if dash >= 0 and not exec_args:
        raise ValueError(ERR_SEPARATOR)
    if env_key:
        if watch_args:
            raise ValueError(ERR_CONFLICT_ENV)
        watch_args = [env_key] + ([env_range] if env_range else [])
    if not watch_args:
        raise ValueError(ERR_BAD_ARGS_NUM)
    return watch_args[:2], exec_args


def create_request(flags, watch_args):
    from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
    key = os.fsencode(watch_args[0])
    end = b""
    if len(watch_args) == 2:
        if flags["prefix"]:
            raise ValueError("`range_end` and `--prefix` are mutually exclusive")
        end = os.fsencode(watch_args[1])
    if flags["prefix"]:
        if not key:
            key, end = b"\x00", b"\x00"
        else:
            end = range_end_prefix(key)
    return rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
        key=key, range_end=end, start_revision=max(flags["rev"], 0),
        progress_notify=flags["progress-notify"], prev_kv=flags["prev-kv"]))


def cancel_error(resp) -> str:
    if resp.compact_revision:
        return "etcdserver: mvcc: required revision has been compacted"
    if resp.cancel_reason:
        r = resp.cancel_reason
        return r if r.startswith("etcdserver: ") else f"rpc error: code = FailedPrecondition desc = {r}"
    return "etcdserver: mvcc: required revision is a future revision"


def run_exec(exec_args, resp, ev):
    env = dict(os.environ)
    env["ETCD_WATCH_REVISION"] = str(resp.header.revision)
    env["ETCD_WATCH_EVENT_TYPE"] = '"PUT"' if ev.type == 0 else '"DELETE"'
    env["ETCD_WATCH_KEY"] = quote(ev.kv.key)
    env["ETCD_WATCH_VALUE"] = quote(ev.kv.value)
    sys.stdout.flush()
    try:
        rc = subprocess.run(exec_args, env=env).returncode
        err = None if rc == 0 else f"exit status {rc}"
    except OSError as e:
        err = f"exec: {quote(exec_args[0])}: {e.strerror}"
    if err:
        sys.stderr.write(f"command {'[' + ' '.join(exec_args) + ']'} error ({err})\n")
        raise CliExit(1)


class Watcher:
    """One Watch stream carrying any number of watchers (interactive mode adds more)."""

    def __init__(self, ctx):
        from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
        self.rpc = rpc
        self.client = ctx.client()
        self.q: "queue.Queue" = queue.Queue()
        md = (self.client.metadata or ()) + (("hasleader", "true"),)
        m = self.client.channel.stream_stream("/etcdserverpb.Watch/Watch",
                                              request_serializer=lambda r: r.SerializeToString(),
                                              response_deserializer=rpc.WatchResponse.FromString)
        self.stream = m(self._requests(), metadata=md, wait_for_ready=True)
        self.exec_for = {}  # watch id -> exec args
        self.pending_exec = []
        self.closing = False

    def _requests(self):
        while True:
            r = self.q.get()
            if r is None:
                return
            yield r

    def add(self, req, exec_args):
        self.pending_exec.append(exec_args)
        self.q.put(req)

    def loop(self, display, stop_when_all_canceled=True):
        import grpc
        active = 0
        try:
            for resp in self.stream:
                if resp.created:
                    self.exec_for[resp.watch_id] = self.pending_exec.pop(0) if self.pending_exec else []
                    active += 1
                    if not resp.canceled:
                        continue
                if resp.canceled:
                    sys.stdout.flush()
                    sys.stderr.write(f"watch was canceled ({cancel_error(resp)})\n")
                if not resp.events and not resp.canceled and not resp.created:
                    sys.stdout.write(f"progress notify: {resp.header.revision}\n")
                display.watch(resp)
                sys.stdout.flush()
                for ev in resp.events:
                    ex = self.exec_for.get(resp.watch_id)
                    if ex:
                        run_exec(ex, resp, ev)
                if resp.canceled:
                    active -= 1
                    if stop_when_all_canceled and active <= 0:
                        break
        except grpc.RpcError as e:
            if self.closing:
                return
            from pyetcd.cli.client import to_etcd_error
            fail(EXIT_BAD_CONNECTION, to_etcd_error(e))
        finally:
            self.q.put(None)


def watch_cmd(ctx):
    env_key = os.environ.get("ETCDCTL_WATCH_KEY", "")
    env_range = os.environ.get("ETCDCTL_WATCH_RANGE_END", "")
    if not env_key and env_range:
        fail(EXIT_BAD_ARGS, f"ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END={env_range!r}".replace("'", '"'))
    if ctx.flags["interactive"]:
        return watch_interactive(ctx, env_key, env_range)
    try:
        watch_args, exec_args = split_watch_args(ctx.args, ctx.flags.args_len_at_dash, env_key, env_range)
        req = create_request(ctx.flags, watch_args)
    except ValueError as e:
        fail(EXIT_BAD_ARGS, e)
    display = ctx.display
    w = Watcher(ctx)
    w.add(req, exec_args)
    w.loop(display)
    fail(EXIT_INTERRUPTED, "watch is canceled by the server")


def watch_interactive(ctx, env_key, env_range):
    from pyetcd.cli.cmd_txn import argify
    from pyetcd.cli.flags import FlagError, HelpRequested, parse
    display = ctx.display
    w = None
    while True:
        line = sys.stdin.readline()
        if not line.endswith("\n"):
            if w is not None:
                w.closing = True
                w.stream.cancel()
            sys.stdout.flush()
            fail(EXIT_INVALID_INPUT, "error reading watch request line: EOF")
        line = line.strip()
        args = argify(line)
        if not args or args[0] != "watch":
            sys.stderr.write(f"Invalid command {line} (only support watch)\n")
            continue
        try:
            parsed = parse(args[1:], ctx.cmd.flags)
            watch_args, exec_args = split_watch_args(parsed.args, parsed.args_len_at_dash, env_key, env_range)
            req = create_request(parsed, watch_args)
        except (FlagError, HelpRequested) as e:
            sys.stderr.write(f"Invalid command {line} ({e})\n")
            continue
        except ValueError as e:
            msg = "command type or key is not provided" if str(e) == ERR_BAD_ARGS_NUM else str(e)
            sys.stderr.write(f"Invalid command {line} ({msg})\n")
            continue
        if w is None:
            w = Watcher(ctx)
            threading.Thread(target=w.loop, args=(display, False), daemon=True).start()
        w.add(req, exec_args)
