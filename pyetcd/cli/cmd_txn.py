"""txn: read compares / success ops / failure ops from stdin (optionally with prompts)."""
from __future__ import annotations

import re
import sys

from pyetcd.cli.base import EXIT_BAD_ARGS, EXIT_ERROR, EXIT_INVALID_INPUT, fail

_ARG_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'|[^\'"\s]\S*[^\'"\s]?')
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a",
            "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def unquote(s: str) -> str:
    """strconv.Unquote for a double-quoted Go string (common escapes)."""
    inner, out, i = s[1:-1], [], 0
    while i < len(inner):
        ch = inner[i]
        if ch == "\\" and i + 1 < len(inner):
            nx = inner[i + 1]
            if nx == "x" and i + 3 < len(inner) + 1:
                out.append(chr(int(inner[i + 2:i + 4], 16)))
                i += 4
                continue
            if nx in "uU":
                n = 4 if nx == "u" else 8
                out.append(chr(int(inner[i + 2:i + 2 + n], 16)))
                i += 2 + n
                continue
            out.append(_ESCAPES.get(nx, nx))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def argify(line: str) -> list[str]:
    out = []
    for a in _ARG_RE.findall(line):
        if a.startswith("'"):
            a = a[1:-1]
        elif a.startswith('"'):
            a = unquote(a)
        out.append(a)
    return out


def _scan_quoted(s: str, pos: int):
    """fmt's %q verb: a double-quoted (or back-quoted) Go string starting at pos (spaces skipped)."""
    while pos < len(s) and s[pos] == " ":
        pos += 1
    if pos >= len(s) or s[pos] not in '"`':
        return None, pos
    q = s[pos]
    j = pos + 1
    while j < len(s):
        if q == '"' and s[j] == "\\":
            j += 2
            continue
        if s[j] == q:
            lit = s[pos:j + 1]
            return (unquote(lit) if q == '"' else lit[1:-1]), j + 1
        j += 1
    return None, pos


_TARGETS = {"ver": 0, "version": 0, "c": 1, "create": 1, "m": 2, "mod": 2, "val": 3, "value": 3,
            "lease": 4}
_RESULTS = {"=": 0, ">": 1, "<": 2, "!=": 3}


def parse_compare(line: str):
    from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
    target, sep, rest = line.partition("(")
    if not sep:
        raise ValueError(f"malformed comparison: {line}")
    key, pos = _scan_quoted(rest, 0)
    op = val = None
    if key is not None and rest[pos:pos + 1] == ")":
        m = re.match(r"\s+(\S+)", rest[pos + 1:])
        if m:
            op = m.group(1)
            val, _ = _scan_quoted(rest, pos + 1 + m.end())
    if key is None or op is None or val is None:
        raise ValueError(f'malformed comparison: {line}; got {target}("{key or ""}") {op or ""} "{val or ""}"')
    if target not in _TARGETS:
        raise ValueError(f"malformed comparison: {line} (unknown target {target})")
    if op not in _RESULTS:
        raise ValueError(f"malformed comparison: {line} (unknown op {op})")
    cmp = rpc.Compare(key=key.encode("utf-8", "surrogateescape"), target=_TARGETS[target],
                      result=_RESULTS[op])
    t = _TARGETS[target]
    try:
        if t == 3:
            cmp.value = val.encode("utf-8", "surrogateescape")
        elif t == 4:
            cmp.lease = int(val, 16)
        else:
            setattr(cmp, {0: "version", 1: "create_revision", 2: "mod_revision"}[t], int(val, 10))
    except ValueError:
        raise ValueError(f"invalid txn compare request: {line}")
    return cmp


class _OpCtx:
    def __init__(self, parsed):
        self.flags, self.args = parsed, parsed.args


def parse_request_union(line: str):
    from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
    from pyetcd.cli import cmd_kv
    from pyetcd.cli.commands import ROOT
    from pyetcd.cli.flags import FlagError, HelpRequested, parse
    args = argify(line)
    if len(args) < 2:
        raise ValueError(f"invalid txn compare request: {line}")
    cmd = ROOT.find(args[0]) if args[0] in ("get", "put", "del") else None
    if cmd is None:
        raise ValueError(f"invalid txn request: {line}")
    try:
        parsed = parse(args[1:], cmd.flags)
    except (FlagError, HelpRequested) as e:
        raise ValueError(f"parse error {e}")
    octx = _OpCtx(parsed)
    if args[0] == "get":
        return rpc.RequestOp(request_range=cmd_kv.range_request(octx).message())
    if args[0] == "del":
        return rpc.RequestOp(request_delete_range=cmd_kv.delete_request(octx))
    f = parsed
    if len(f.args) < 2:
        fail(EXIT_BAD_ARGS, "put command needs 1 argument and input from stdin or 2 arguments")
    from pyetcd.cli.goutil import GoParseError, parse_int
    try:
        lease = parse_int(f["lease"], 16)
    except GoParseError as e:
        fail(EXIT_BAD_ARGS, f"bad lease ID ({e}), expecting ID in Hex")
    return rpc.RequestOp(request_put=rpc.PutRequest(
        key=cmd_kv.b(f.args[0]), value=cmd_kv.b(f.args[1]), lease=lease, prev_kv=f["prev-kv"],
        ignore_value=f["ignore-value"], ignore_lease=f["ignore-lease"]))


def _read_block(stream, parse_line):
    out = []
    while True:
        line = stream.readline()
        if not line.endswith("\n"):
            fail(EXIT_INVALID_INPUT, "EOF")
        line = line.strip()
        if not line:
            return out
        try:
            out.append(parse_line(line))
        except ValueError as e:
            fail(EXIT_INVALID_INPUT, e)


def txn_cmd(ctx):
    if ctx.args:
        fail(EXIT_BAD_ARGS, "txn command does not accept argument")
    interactive = ctx.flags["interactive"]
    c = ctx.client()
    stdin = sys.stdin

    def prompt(s):
        if interactive:
            sys.stdout.write(s + "\n")
            sys.stdout.flush()

    from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
    prompt("compares:")
    cmps = _read_block(stdin, parse_compare)
    prompt("success requests (get, put, del):")
    succ = _read_block(stdin, parse_request_union)
    prompt("failure requests (get, put, del):")
    fail_ops = _read_block(stdin, parse_request_union)
    try:
        resp = c.call("Txn", rpc.TxnRequest(compare=cmps, success=succ, failure=fail_ops))
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, e)
    ctx.display.txn(resp)
