"""Shared helpers: Transports in one event loop on loopback ports, recording every callback."""
from __future__ import annotations

import asyncio
import io
import os

from pyetcd.pb import raftpb
from pyetcd.transport import Transport

CLUSTER = 0xC1C1C1C1
LOOPBACK = "http://127.0.0.1:0"


def run(coro, timeout: float = 60.0):
    """Run an async test body with an overall bound (a hang fails instead of blocking CI),
    on uvloop like the server (PYETCD_UVLOOP=0 for asyncio's own loop)."""
    async def bounded():
        task = asyncio.ensure_future(coro)
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:  # say where it hangs: every pending task's stack
            out = io.StringIO()
            for t in asyncio.all_tasks():
                if t is not asyncio.current_task():
                    out.write(f"task {t.get_name()}:\n")
                    for f in t.get_stack():  # Cython frames have no line number
                        out.write(f"  {f.f_code.co_filename}:{f.f_lineno} {f.f_code.co_name}\n")
            task.cancel()
            raise AssertionError(f"test body did not finish in {timeout} s; pending tasks:\n{out.getvalue()}")
        # Let gRPC's own tasks end before the loop closes: cancelling them there can crash grpcio.
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if rest:
            await asyncio.wait(rest, timeout=5)
        return task.result()
    if os.environ.get("PYETCD_UVLOOP", "1") != "0":
        try:
            import uvloop
            return uvloop.run(bounded())
        except ImportError:
            pass
    return asyncio.run(bounded())


async def wait_until(cond, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll until cond() is true; fail after timeout. A bound on waiting, not a timing assertion."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class ListLogger:
    def __init__(self):
        self.records: list[tuple[str, str, dict]] = []

    def _add(self, level, msg, fields):
        self.records.append((level, msg, fields))

    def debug(self, msg, **f): self._add("debug", msg, f)
    def info(self, msg, **f): self._add("info", msg, f)
    def warn(self, msg, **f): self._add("warn", msg, f)
    def error(self, msg, **f): self._add("error", msg, f)

    def has(self, level: str, text: str) -> bool:
        return any(lv == level and (text in m or any(text in str(v) for v in f.values()))
                   for lv, m, f in self.records)


class Node:
    """A Transport plus everything its callbacks saw."""

    def __init__(self, member_id: int, cluster_id: int = CLUSTER, snapshot_dir: str | None = None,
                 install=None, **kw):
        self.id = member_id
        self.batches: list[list] = []       # each on_messages call
        self.unreachable: list[int] = []
        self.snap_status: list[tuple[int, bool]] = []
        self.snapshots: list[tuple[object, str, bytes]] = []   # (msg, path, file content)
        self.install = install
        self.logger = ListLogger()
        self.t = Transport(member_id, cluster_id,
                           on_messages=self.batches.append,
                           on_snapshot=self._on_snapshot,
                           on_unreachable=self.unreachable.append,
                           on_snapshot_status=lambda p, failed: self.snap_status.append((p, failed)),
                           snapshot_dir=snapshot_dir, logger=self.logger, **kw)
        self.url = None

    async def _on_snapshot(self, msg, path):
        if self.install is not None:
            await self.install(msg, path)
        with open(path, "rb") as f:
            self.snapshots.append((msg, path, f.read()))

    async def start(self, url: str = LOOPBACK):
        (self.url,) = await self.t.start([url])
        return self

    @property
    def msgs(self) -> list:
        return [m for b in self.batches for m in b]

    def msgs_from(self, peer_id: int) -> list:
        return [m for m in self.msgs if getattr(m, "from") == peer_id]


def msg(frm: int, to: int, index: int, mtype=raftpb.MsgApp, payload: bytes = b"") -> raftpb.Message:
    m = raftpb.Message(type=mtype, to=to, term=1, index=index)
    setattr(m, "from", frm)
    if payload:
        m.entries.add(Term=1, Index=index + 1, Data=payload)
    return m


async def cluster(n: int, tmp_path=None, **kw) -> list[Node]:
    """n started Nodes (ids 1..n) that know each other."""
    nodes = []
    for i in range(1, n + 1):
        sd = os.path.join(str(tmp_path), f"snap{i}") if tmp_path is not None else None
        nodes.append(await Node(i, snapshot_dir=sd, **kw).start())
    for a in nodes:
        for b in nodes:
            if a is not b:
                a.t.add_peer(b.id, [b.url])
    return nodes


async def stop_all(nodes) -> None:
    await asyncio.gather(*(n.t.stop() for n in nodes), return_exceptions=True)
