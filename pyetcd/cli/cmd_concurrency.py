"""lock and elect."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from pyetcd.cli.base import EXIT_BAD_ARGS, EXIT_ERROR, fail


def _on_signal(cancel: threading.Event):
    def handler(_sig, _frm):
        cancel.set()
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def lock_cmd(ctx):
    if not ctx.args:
        fail(EXIT_BAD_ARGS, "lock takes a lock name argument and an optional command to execute")
    c = ctx.client()
    display = ctx.display
    from pyetcd.cli import concurrency as cc
    from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
    cancel = threading.Event()
    _on_signal(cancel)
    try:
        s = cc.Session(c, ttl=ctx.flags["ttl"])
        m = cc.Mutex(s, ctx.args[0])
        m.lock(cancel)
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, e)
    if cancel.is_set():
        m.unlock()
        return 0
    cmd_args = ctx.args[1:]
    if cmd_args:
        env = {"ETCD_LOCK_KEY": m.key.decode("utf-8", "surrogateescape"),
               "ETCD_LOCK_REV": str(m.header.revision), **os.environ}
        sys.stdout.flush()
        try:
            rc = subprocess.run(cmd_args, env=env).returncode
        except OSError as e:
            m.unlock()
            fail(EXIT_ERROR, f"exec: {cmd_args[0]!r}: {e.strerror}".replace("'", '"'))
        m.unlock()
        s.close(revoke=False)
        if rc != 0:
            fail(EXIT_ERROR, f"exit status {rc}")
        return 0
    k = c.call("Range", rpc.RangeRequest(key=m.key))
    if not k.kvs:
        fail(EXIT_ERROR, "lock lost on init")
    display.get(k)
    sys.stdout.flush()
    while not cancel.wait(0.2):
        if s.done.is_set():
            fail(EXIT_ERROR, "session expired")
    m.unlock()
    s.close(revoke=False)
    return 0


def elect_cmd(ctx):
    args = ctx.args
    if len(args) not in (1, 2):
        fail(EXIT_BAD_ARGS, "elect takes one election name argument and an optional proposal argument")
    listen = ctx.flags["listen"]
    if len(args) == 1 and not listen:
        fail(EXIT_BAD_ARGS, "no proposal argument but -l not set")
    if len(args) == 2 and listen:
        fail(EXIT_BAD_ARGS, "proposal given but -l is set")
    c = ctx.client()
    display = ctx.display
    from pyetcd.cli import concurrency as cc
    from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
    cancel = threading.Event()
    _on_signal(cancel)
    try:
        s = cc.Session(c)
        e = cc.Election(s, args[0])
    except Exception as ex:  # noqa: BLE001
        fail(EXIT_ERROR, ex)
    if listen:
        def emit(resp):
            display.get(resp)
            sys.stdout.flush()
        t = threading.Thread(target=e.observe, args=(emit, cancel), daemon=True)
        t.start()
        while t.is_alive() and not cancel.wait(0.2):
            pass
        s.close()
        if not cancel.is_set():
            fail(EXIT_ERROR, "elect: observer lost")
        return 0
    try:
        e.campaign(os.fsencode(args[1]), cancel)
    except Exception as ex:  # noqa: BLE001
        fail(EXIT_ERROR, ex)
    if not cancel.is_set():
        display.get(c.call("Range", rpc.RangeRequest(key=e.key)))
        sys.stdout.flush()
        while not cancel.wait(0.2):
            if s.done.is_set():
                fail(EXIT_ERROR, "elect: session expired")
    e.resign()
    s.close()
    return 0
