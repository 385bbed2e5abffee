"""Differential harness: the real etcdctl and pyetcdctl, each driving its own server, fed the same
commands in the same order. Both servers advertise the same peer URL, so member and cluster IDs
match; revisions match because the command sequences do. What differs by nature (client ports,
lease IDs, durations, remaining TTLs, zap log lines on stderr) is normalised before comparing."""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from pyetcd.testing import procs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER_KIND = os.environ.get("PYETCD_CLI_SERVER", "etcd")


@dataclass
class Result:
    rc: int
    out: bytes
    err: bytes


def pyetcdctl_cmd() -> list[str]:
    return [sys.executable, "-m", "pyetcd.cli"]


def _env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def run(cmd, args, stdin=None, env=None, timeout=30.0, kill_after=None, lines=None) -> Result:
    """kill_after: a command that runs until stopped (watch, lock) gets SIGTERM after that many
    seconds. lines: or, once it has printed that many stdout lines (what the other tool printed
    in its kill_after seconds) and half a second more for any surplus, bounded by ``timeout``,
    so a slow start on a loaded machine is not mistaken for missing output."""
    inp = stdin.encode() if isinstance(stdin, str) else (stdin if stdin is not None else b"")
    if kill_after is None:
        p = subprocess.run(cmd + list(args), input=inp, capture_output=True, env=_env(env),
                           timeout=timeout)
        return Result(p.returncode, p.stdout, p.stderr)
    p = subprocess.Popen(cmd + list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=_env(env), start_new_session=True)
    if not lines:  # nothing to wait for: the same fixed time as the other tool had
        try:
            out, err = p.communicate(inp, timeout=kill_after)
        except subprocess.TimeoutExpired:
            p.terminate()
            out, err = p.communicate(timeout=10)
        return Result(None, out, err)
    bufs = {p.stdout: bytearray(), p.stderr: bytearray()}
    readers = [threading.Thread(target=_drain, args=(f, bufs[f]), daemon=True) for f in bufs]
    for t in readers:
        t.start()
    with contextlib.suppress(BrokenPipeError):
        p.stdin.write(inp)
        p.stdin.close()
    deadline = time.monotonic() + max(timeout, kill_after)
    while p.poll() is None and time.monotonic() < deadline and bufs[p.stdout].count(b"\n") < lines:
        time.sleep(0.05)
    if p.poll() is None:
        time.sleep(0.5)
        p.terminate()
    p.wait(10)
    for t in readers:
        t.join(10)
    return Result(None, bytes(bufs[p.stdout]), bytes(bufs[p.stderr]))


def _drain(f, buf: bytearray) -> None:
    while chunk := os.read(f.fileno(), 65536):
        buf += chunk


def start_pair(base_dir: str):
    shared_peer = f"http://127.0.0.1:{procs.free_port()}"
    extra = ["--initial-advertise-peer-urls", shared_peer, "--initial-cluster", f"default={shared_peer}"]
    ms = []
    for side in ("a", "b"):
        d = os.path.join(base_dir, side)
        os.makedirs(d, exist_ok=True)
        port = procs.free_port()
        while port < 10000:  # equal-width ports keep protobuf length prefixes equal
            port = procs.free_port()
        ms.append(procs.member(SERVER_KIND, d, extra_args=extra, client_port=port).start())
    return ms


_LOG_LINE = re.compile(rb'^\{"level":.*\n?', re.M)
_DUR = rb"[0-9.]+(?:ns|\xc2\xb5s|ms|s|m[0-9.]+s|h[0-9ms.]+)"


class Pair:
    def __init__(self, a, b):
        self.a, self.b = a, b
        self.subst: list[tuple[bytes, bytes]] = [(str(b.client_port).encode(), str(a.client_port).encode())]

    def map_ids(self, id_b: int, id_a: int):
        """Tell the normaliser that B's lease/member id id_b plays the role of A's id_a."""
        for fb, fa in ((f"{id_b:016x}", f"{id_a:016x}"), (f"{id_b:x}", f"{id_a:x}"), (str(id_b), str(id_a))):
            self.subst.insert(0, (fb.encode(), fa.encode()))

    def etcdctl(self, *args, own_endpoint=True, **kw) -> Result:
        pre = ["--endpoints", self.a.endpoint] if own_endpoint else []
        return run([procs.etcdctl_bin()], [*pre, *args],
                   env={"ETCDCTL_API": "3", **kw.pop("env", {})}, **kw)

    def pyetcdctl(self, *args, own_endpoint=True, **kw) -> Result:
        pre = ["--endpoints", self.b.endpoint] if own_endpoint else []
        return run(pyetcdctl_cmd(), [*pre, *args], **kw)

    def both(self, *args, args_b=None, **kw):
        ra = self.etcdctl(*args, **kw)
        if kw.get("kill_after") is not None:  # wait for as many lines as etcdctl printed
            kw["lines"] = ra.out.count(b"\n")
        return ra, self.pyetcdctl(*(args_b or args), **kw)

    def normalise(self, data: bytes, side: str) -> bytes:
        data = _LOG_LINE.sub(b"", data)
        if side == "b":
            for fb, fa in self.subst:
                data = data.replace(fb, fa)
        data = re.sub(rb"(Member|cluster) +([0-9a-f])", rb"\1 \2", data)  # %16x pads with spaces
        data = re.sub(rb"took = " + _DUR, b"took = <dur>", data)
        data = re.sub(rb'"took":"' + _DUR + b'"', b'"took":"<dur>"', data)
        data = re.sub(rb'"Took" : ' + _DUR, b'"Took" : <dur>', data)
        if data.startswith(b"+-") and re.search(rb"\| +" + _DUR + rb" \|", data):
            data = re.sub(rb"\| +" + _DUR + rb" \|", b"| <dur> |", data)
            data = re.sub(rb"-{2,}", b"--", re.sub(rb" {2,}", b" ", data))
        data = re.sub(rb"remaining\(-?\d+s\)", b"remaining(<ttl>)", data)
        data = re.sub(rb'"ttl":\d+', b'"ttl":<ttl>', data)
        data = re.sub(rb'"TTL" : \d+', b'"TTL" : <ttl>', data)
        return data

    def compare(self, args, stdin=None, env=None, check_rc=True, args_b=None, **kw):
        """Run args through both tools (args_b: B's own variant, e.g. with B's lease id)."""
        ra, rb = self.both(*args, args_b=args_b, stdin=stdin, env=env or {}, **kw)
        oa, ob = self.normalise(ra.out, "a"), self.normalise(rb.out, "b")
        ea, eb = self.normalise(ra.err, "a"), self.normalise(rb.err, "b")
        ctx = f"\nargs={args}\netcdctl rc={ra.rc} out={ra.out!r} err={ra.err!r}\n" \
              f"pyetcdctl rc={rb.rc} out={rb.out!r} err={rb.err!r}"
        if check_rc:
            assert ra.rc == rb.rc, "exit codes differ" + ctx
        assert oa == ob, "stdout differs" + ctx
        assert ea == eb, "stderr differs" + ctx
        return ra, rb
