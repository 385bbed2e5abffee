"""A loopback TCP proxy in front of each member's peer port, for network faults.

Every member listens on its real peer port but advertises the proxy's address as its peer URL,
so all member-to-member traffic passes through a proxy. A proxy sits in front of the
*destination* member; it learns the *source* member of a connection by reading the first HTTP
request on it (etcd's rafthttp sends ``X-Server-From: <member id hex>`` on every stream and
pipeline request). A connection whose source is unknown (bootstrap ``/members`` calls, or a
peer protocol without that header) is treated as coming from "anyone".

Faults, all reversible with :meth:`ProxyNet.heal`:

- ``blackhole(name)``: every byte to and from ``name`` is silently dropped (connections stay
  open, as with a pulled cable), on its own proxy and, for identified sources, on the others.
- ``partition(groups)``: members in different groups cannot reach each other.
- ``delay(name, seconds)``: every chunk to or from ``name`` is held back that long.

A connection that had bytes dropped is closed once traffic would flow again: a byte stream
with a hole in it is garbage, and closing makes the member redial cleanly.

All proxies run on one asyncio loop in a daemon thread; the control methods are thread-safe.
Only 127.0.0.1 is ever bound or dialled.
"""
from __future__ import annotations

import asyncio
import re
import threading

_LOOPBACK = "127.0.0.1"
_FROM_RE = re.compile(rb"\r\nX-Server-From:\s*([0-9a-fA-F]+)\r\n", re.IGNORECASE)
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_SNIFF_MAX = 8192


def _h2_server_from(data: bytes) -> tuple[bool, str | None]:
    """pyetcd's peer transport is gRPC: its HTTP/2 HEADERS blocks are HPACK-compressed, so the
    sender's ``x-server-from`` metadata is found by decoding the header blocks in order.
    Returns (decided, id): decided once the first HEADERS block has been read."""
    try:
        import hpack
    except ImportError:
        return True, None
    pos = len(_H2_PREFACE)
    dec = hpack.Decoder()
    while pos + 9 <= len(data):
        length = int.from_bytes(data[pos:pos + 3], "big")
        ftype, flags = data[pos + 3], data[pos + 4]
        body = data[pos + 9:pos + 9 + length]
        if len(body) < length:
            return False, None  # wait for more bytes
        pos += 9 + length
        if ftype != 1:  # HEADERS (CONTINUATION is not used for headers this small)
            continue
        if flags & 0x8:  # PADDED
            body = body[1:len(body) - body[0]]
        if flags & 0x20:  # PRIORITY
            body = body[5:]
        try:
            for name, value in dec.decode(body):
                if (name.decode() if isinstance(name, bytes) else name) == "x-server-from":
                    v = value.decode() if isinstance(value, bytes) else value
                    return True, v.strip().lower()
        except Exception:
            return True, None
        return True, None
    return False, None


def _identify(sniffed: bytes) -> tuple[bool, str | None]:
    """(decided, source member id hex) from the first bytes a client sent on a connection."""
    if len(sniffed) >= _SNIFF_MAX:
        decided = True
    elif sniffed.startswith(_H2_PREFACE):
        decided, sid = _h2_server_from(sniffed)
        return decided, ((sid.lstrip("0") or "0") if sid else None)
    elif len(sniffed) < len(_H2_PREFACE) and _H2_PREFACE.startswith(sniffed):
        return False, None
    else:
        decided = b"\r\n\r\n" in sniffed  # an HTTP/1 request's headers are complete
    m = _FROM_RE.search(sniffed)
    return decided or m is not None, (m.group(1).decode().lower() if m else None)


class ProxyNet:
    """A set of peer proxies, one per member name, sharing one rule table."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="peer-proxy",
                                        daemon=True)
        self._thread.start()
        self._servers: dict[str, asyncio.AbstractServer] = {}
        self._targets: dict[str, int] = {}
        self._id_to_name: dict[str, str] = {}
        self._lock = threading.Lock()
        # Rules. _blocked holds unordered pairs {a, b}; "*" stands for an unidentified source.
        self._blackholed: set[str] = set()
        self._groups: list[set[str]] | None = None
        self._delay: dict[str, float] = {}
        self._conns: set[asyncio.StreamWriter] = set()
        self.dropped_bytes = 0

    # -- lifecycle -----------------------------------------------------------------------
    def add(self, name: str, target_port: int, listen_port: int = 0) -> int:
        """Start a proxy for member ``name`` forwarding to ``target_port``; returns its port."""
        fut = asyncio.run_coroutine_threadsafe(self._add(name, target_port, listen_port),
                                               self._loop)
        return fut.result(10)

    async def _add(self, name: str, target_port: int, listen_port: int) -> int:
        self._targets[name] = target_port
        server = await asyncio.start_server(
            lambda r, w: self._handle(name, r, w), _LOOPBACK, listen_port, reuse_address=True)
        self._servers[name] = server
        return server.sockets[0].getsockname()[1]

    def remove(self, name: str) -> None:
        server = self._servers.pop(name, None)
        if server is not None:
            asyncio.run_coroutine_threadsafe(self._close_server(server), self._loop).result(10)

    @staticmethod
    async def _close_server(server: asyncio.AbstractServer) -> None:
        server.close()

    def close(self) -> None:
        async def _shutdown():
            for s in self._servers.values():
                s.close()
            for w in list(self._conns):
                w.close()
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(_shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._servers.clear()

    def set_member_id(self, member_id: int, name: str) -> None:
        """Teach the proxies which member id (as rafthttp's X-Server-From) is which name."""
        with self._lock:
            self._id_to_name[f"{member_id:x}"] = name

    # -- rules ---------------------------------------------------------------------------
    def blackhole(self, name: str) -> None:
        with self._lock:
            self._blackholed.add(name)

    def partition(self, groups: list[set[str]]) -> None:
        with self._lock:
            self._groups = [set(g) for g in groups]

    def delay(self, name: str, seconds: float) -> None:
        with self._lock:
            self._delay[name] = seconds

    def heal(self) -> None:
        with self._lock:
            self._blackholed.clear()
            self._groups = None
            self._delay.clear()

    def describe(self) -> str:
        with self._lock:
            return (f"blackholed={sorted(self._blackholed)} groups={self._groups} "
                    f"delay={self._delay}")

    def _blocked(self, src: str | None, dst: str) -> bool:
        with self._lock:
            if dst in self._blackholed or (src is not None and src in self._blackholed):
                return True
            if self._groups is None:
                return False
            gdst = next((g for g in self._groups if dst in g), None)
            if src is None:
                # Unknown source: block if dst is cut off from anybody at all.
                return gdst is not None and len(self._groups) > 1
            gsrc = next((g for g in self._groups if src in g), None)
            return gsrc is not gdst

    def _latency(self, src: str | None, dst: str) -> float:
        with self._lock:
            return max(self._delay.get(dst, 0.0), self._delay.get(src, 0.0) if src else 0.0)

    # -- data path -----------------------------------------------------------------------
    async def _handle(self, dst: str, creader: asyncio.StreamReader,
                      cwriter: asyncio.StreamWriter) -> None:
        self._conns.add(cwriter)
        swriter = None
        try:
            sreader, swriter = await asyncio.open_connection(_LOOPBACK, self._targets[dst])
            self._conns.add(swriter)
            # Until the source is known (or cannot be), the client's bytes wait in "held":
            # dropping a new connection's preface because its sender is not yet known would
            # make every redial during a partition fail, even between linked members.
            state = {"src_id": None, "sniffed": b"", "decided": False, "tainted": False, "held": []}
            await asyncio.gather(self._pump(dst, state, creader, swriter, True),
                                 self._pump(dst, state, sreader, cwriter, False))
        except (OSError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for w in (cwriter, swriter):
                if w is not None:
                    self._conns.discard(w)
                    w.close()

    async def _pump(self, dst: str, state: dict, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter, inbound: bool) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if not state["decided"]:
                    if not inbound:
                        # the server's side before the client's first request (HTTP/2
                        # SETTINGS) passes: a client may wait for it before sending headers
                        writer.write(data)
                        await writer.drain()
                        continue
                    state["sniffed"] += data
                    state["decided"], state["src_id"] = _identify(state["sniffed"])
                    state["held"].append(data)
                    if not state["decided"]:
                        continue
                    held, state["held"] = state["held"], []
                    for chunk in held:  # released in order, under the rules
                        if not await self._forward(dst, state, chunk, writer):
                            return
                    continue
                if not await self._forward(dst, state, data, writer):
                    break
        finally:
            writer.close()

    def _admit(self, dst: str, state: dict, data: bytes) -> float | None:
        """The delay before data may pass, 0.0 if at once; None once the stream must close.
        Data on a cut link is dropped (and the stream marked tainted)."""
        # Resolved on every chunk: streams often open before the ids are known.
        src = self._id_to_name.get(state["src_id"]) if state["src_id"] else None
        if self._blocked(src, dst):
            state["tainted"] = True
            self.dropped_bytes += len(data)
            return 0.0
        if state["tainted"]:
            return None  # traffic flows again but the stream has a hole: make them redial
        return self._latency(src, dst)

    async def _forward(self, dst: str, state: dict, data: bytes, writer: asyncio.StreamWriter) -> bool:
        """Pass data on unless the rules cut this link; False once the stream must close."""
        lat = self._admit(dst, state, data)
        if lat is None:
            return False
        if state["tainted"]:
            return True
        if lat > 0:
            await asyncio.sleep(lat)
        writer.write(data)
        await writer.drain()
        return True
