"""etcd's HTTP endpoints on `--listen-metrics-urls`: `/metrics` and `/health`.

pyetcd's client port is served by grpc.aio, which cannot also answer HTTP/1.1, so these endpoints
live only on the metrics URLs, where etcd 3.5.1 serves them too (embed.serveMetrics registers
etcdhttp.HandleMetricsHealthForV3 on its own mux; kubeadm probes http://127.0.0.1:2381/health).
etcd 3.5.1 serves nothing else there: `/version` is 404 on a metrics URL.

The server is a small HTTP/1.1 server on asyncio streams that answers as Go's net/http and
ServeMux answer, as observed on etcd 3.5.1:

- `/metrics`: any method; Prometheus text 0.0.4 (gzip when the client accepts it).
- `/health`: GET only (else 405, `Allow: GET`, `Method Not Allowed`). 200 and
  `{"health":"true","reason":""}`; 503 and the JSON plus a newline (Go's http.Error) with the
  reason: `ALARM NOSPACE` / `ALARM CORRUPT` (unless `?exclude=<ALARM>`), `RAFT NO LEADER`, or
  `RANGE ERROR:<err>` when a linearizable read does not complete within the request timeout
  (a member cut off from its quorum that still believes in its old leader waits that long).
  `?serializable=true` is ignored, as in 3.5.1 (it came in a later release).
- other paths: 404 `404 page not found`; unclean paths (`//health`, `/./health`) get ServeMux's
  301 to the clean path; a request without Host (HTTP/1.1) or unparsable gets Go's 400.
"""
from __future__ import annotations

import asyncio
import gzip
import json
from email.utils import formatdate
from urllib.parse import parse_qs, unquote, urlsplit

from pyetcd import errors
from pyetcd.pb import rpc

from .metrics import CONTENT_TYPE, ServerMetrics

TEXT = "text/plain; charset=utf-8"
MAX_HEADER_BYTES = 1 << 20     # Go's http.DefaultMaxHeaderBytes
MAX_BODY_BYTES = 256 << 10     # bodies are read and dropped up to this (Go: 256 KiB), else close
IDLE_TIMEOUT = 300.0           # a keep-alive connection idle this long is closed

_REASONS = {200: "OK", 301: "Moved Permanently", 400: "Bad Request", 404: "Not Found",
            405: "Method Not Allowed", 503: "Service Unavailable"}


def server_ssl_context(tls, hostport: str):
    """An ssl context from the member's client TLS info (pyetcd.transport.tls.TLSInfo)."""
    import ssl

    if tls is None or tls.empty():
        raise ValueError(f"cannot listen on TLS for {hostport}: KeyFile and CertFile are not presented")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2   # Go's server default
    ctx.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_cert_auth or tls.trusted_ca_file:  # etcd 3.5: a CA file alone requires client certs
        ctx.verify_mode = ssl.CERT_REQUIRED
        if tls.trusted_ca_file:
            ctx.load_verify_locations(tls.trusted_ca_file)
        else:
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    return ctx


class BadRequest(Exception):
    pass


def clean_path(p: str) -> str:
    """Go's ServeMux cleanPath: path.Clean, keeping a trailing slash."""
    if not p:
        return "/"
    if p[0] != "/":
        p = "/" + p
    out: list[str] = []
    for part in p.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    np = "/" + "/".join(out)
    if p.endswith("/") and np != "/":
        np += "/"
    return np


class Response:
    def __init__(self, status: int, body: bytes = b"", content_type: str | None = TEXT,
                 headers: list | None = None):
        self.status = status
        self.body = body
        self.headers = list(headers or [])
        if content_type:
            self.headers.append(("Content-Type", content_type))


def _error(status: int, text: str, headers: list | None = None) -> Response:
    """Go's http.Error: text plus a newline, nosniff."""
    return Response(status, (text + "\n").encode(), TEXT,
                    (headers or []) + [("X-Content-Type-Options", "nosniff")])


class MetricsHTTPServer:
    """Serves `/metrics` and `/health` for one member on each of its metrics URLs."""

    def __init__(self, server, lg):
        self.server = server
        self.lg = lg
        self.metrics = ServerMetrics(server)
        self._servers: list[asyncio.AbstractServer] = []
        self._conns: set[asyncio.Task] = set()

    async def start(self, urls: list[str], tls=None) -> None:
        """Listen on each URL; https ones use the client TLS info (--cert-file, --key-file,
        --trusted-ca-file, --client-cert-auth), as etcd's metrics listeners do."""
        for u in urls:
            p = urlsplit(u)
            host = p.hostname or "localhost"
            ctx = None
            if p.scheme == "https":
                ctx = server_ssl_context(tls, f"{host}:{p.port}")
            elif p.scheme != "http":
                raise ValueError(f"pyetcd: {p.scheme} metrics URLs are not supported ({u})")
            srv = await asyncio.start_server(self._serve_conn, host, p.port, ssl=ctx,
                                             limit=MAX_HEADER_BYTES, reuse_address=True)
            self._servers.append(srv)
            self.lg.info("serving metrics", address=u)

    async def stop(self) -> None:
        for s in self._servers:
            s.close()
        for t in list(self._conns):
            t.cancel()
        for s in self._servers:
            await s.wait_closed()
        self._servers.clear()

    # ---- connections --------------------------------------------------------------------
    async def _serve_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._conns.add(task)
        try:
            while True:
                try:
                    req = await asyncio.wait_for(self._read_request(reader), IDLE_TIMEOUT)
                except BadRequest as e:
                    status = f"400 Bad Request{e}".encode()  # Go puts the detail in both places
                    writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                 b"Connection: close\r\n\r\n" + status)
                    await writer.drain()
                    return
                if req is None:
                    return
                method, target, version, headers, drained = req
                keep = drained and (
                    headers.get("connection", "").lower() != "close" if version == "HTTP/1.1"
                    else headers.get("connection", "").lower() == "keep-alive")
                resp = await self._handle(method, target, version, headers)
                extra = []
                if resp.status == 400:       # ServeMux's answer to "*": close
                    keep = False
                if version == "HTTP/1.1" and not keep:
                    extra.append(("Connection", "close"))
                elif version == "HTTP/1.0" and keep:
                    extra.append(("Connection", "keep-alive"))
                writer.write(self._encode(resp, version, method, extra))
                await writer.drain()
                if not keep:
                    return
        except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError, OSError):
            pass  # includes failed TLS handshakes (ssl.SSLError is an OSError)
        except asyncio.CancelledError:
            pass
        finally:
            self._conns.discard(task)
            writer.close()

    async def _read_request(self, reader: asyncio.StreamReader):
        """(method, target, version, headers, body_drained) or None at a clean EOF."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as e:
            if not e.partial.strip():
                return None
            raise BadRequest("") from None
        except asyncio.LimitOverrunError:
            raise BadRequest("") from None
        lines = head[:-4].split(b"\r\n")
        while lines and not lines[0]:   # Go tolerates empty lines before the request line
            lines.pop(0)
        try:
            method, target, version = lines[0].decode("latin-1").split(" ")
        except (ValueError, IndexError):
            raise BadRequest("") from None
        if version not in ("HTTP/1.0", "HTTP/1.1") or not method or not target:
            raise BadRequest("")
        headers: dict[str, str] = {}
        for raw in lines[1:]:
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise BadRequest("")
            headers[name.lower()] = value.strip()
        if version == "HTTP/1.1" and "host" not in headers:
            raise BadRequest(": missing required Host header")
        drained = True
        if "chunked" in headers.get("transfer-encoding", "").lower():
            drained = False  # not worth parsing: answer, then close
        elif headers.get("content-length"):
            try:
                n = int(headers["content-length"])
            except ValueError:
                raise BadRequest("") from None
            if n < 0:
                raise BadRequest("")
            if n <= MAX_BODY_BYTES:
                await reader.readexactly(n)
            else:
                drained = False
        return method, target, version, headers, drained

    @staticmethod
    def _encode(resp: Response, version: str, method: str, extra: list) -> bytes:
        body = b"" if method == "HEAD" else resp.body
        lines = [f"{version} {resp.status} {_REASONS.get(resp.status, '')}"]
        for k, v in resp.headers + extra:
            lines.append(f"{k}: {v}")
        lines.append(f"Date: {formatdate(usegmt=True)}")
        lines.append(f"Content-Length: {len(resp.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    # ---- routing ------------------------------------------------------------------------
    async def _handle(self, method: str, target: str, version: str, headers: dict) -> Response:
        if target == "*":
            return Response(400, b"", None)
        if target.startswith("/"):
            raw_path, _, query = target.partition("?")
        else:
            u = urlsplit(target)
            if not u.scheme:
                return Response(400, b"", None)
            raw_path, query = u.path or "/", u.query
        path = unquote(raw_path)
        np = clean_path(path)
        if np != path:
            loc = np + ("?" + query if query else "")
            return Response(301, f'<a href="{loc}">Moved Permanently</a>.\n\n'.encode(),
                            "text/html; charset=utf-8", [("Location", loc)])
        if path == "/metrics":
            return self._metrics(headers)
        if path == "/health":
            if method != "GET":
                return _error(405, "Method Not Allowed", [("Allow", "GET")])
            return await self._health(parse_qs(query, keep_blank_values=True))
        return _error(404, "404 page not found")

    def _metrics(self, headers: dict) -> Response:
        body = self.metrics.render()
        accept = [t.split(";")[0].strip().lower() for t in headers.get("accept-encoding", "").split(",")]
        if "gzip" in accept:
            return Response(200, gzip.compress(body), CONTENT_TYPE, [("Content-Encoding", "gzip")])
        return Response(200, body, CONTENT_TYPE)

    async def _health(self, query: dict) -> Response:
        excluded = {a for a in query.get("exclude", []) if a}
        health, reason = await check_health(self.server, excluded)
        body = json.dumps({"health": health, "reason": reason}, separators=(",", ":"))
        if health == "true":
            self.metrics.health_success += 1
            return Response(200, body.encode(), TEXT)
        self.metrics.health_failures += 1
        self.lg.warn("/health error", output=body, **{"status-code": 503})
        return _error(503, body)


def _alarm_reason(alarm: int) -> str:
    if alarm == rpc.NOSPACE:
        return "ALARM NOSPACE"
    if alarm == rpc.CORRUPT:
        return "ALARM CORRUPT"
    return "ALARM UNKNOWN"


async def check_health(server, excluded: set[str]) -> tuple[str, str]:
    """etcd 3.5.1's checkV3Health: active alarms not excluded, a known leader, then a
    linearizable one-key Range within the request timeout."""
    alarms = getattr(server, "alarms", None)
    for a in (alarms.get() if alarms is not None else ()):
        name = rpc.AlarmType.Name(a.alarm) if a.alarm in rpc.AlarmType.values() else str(a.alarm)
        if name in excluded:
            continue
        return "false", _alarm_reason(a.alarm)
    if server.leader_id == 0:
        return "false", "RAFT NO LEADER"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + server.request_timeout
    while True:
        try:
            await asyncio.wait_for(server.linearizable_read(), max(deadline - loop.time(), 0.001))
            server.kv.range(b"\x00", b"\x00", limit=1, keys_only=True)
            return "true", ""
        except asyncio.TimeoutError:
            return "false", f"RANGE ERROR:{errors.ErrTimeout.message}"
        except errors.EtcdError as e:
            # etcd's read waits out a lost leader (only a new leader fails it, with "leader
            # changed") and answers "request timed out" at the deadline; so does this check.
            if e not in (errors.ErrNoLeader, errors.ErrLeaderChanged) or server.leader_id != 0:
                return "false", f"RANGE ERROR:{e.message}"
            if loop.time() >= deadline:
                return "false", f"RANGE ERROR:{errors.ErrTimeout.message}"
            await asyncio.sleep(min(0.1, max(deadline - loop.time(), 0)))
