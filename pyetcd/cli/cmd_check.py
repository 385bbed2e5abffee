"""check perf and check datascale, run as etcdctl 3.5.1 runs them.

perf: a rate-limited stream of 256-byte-key / 1 KiB-value puts for 60 s, then etcdctl's verdict
lines (throughput, slowest request, stddev). datascale: `limit` puts of 512-byte keys and 512-byte
values with the load's number of requests in flight, the server's process_resident_memory_bytes
read from <first endpoint>/metrics (plain HTTP/1.1, or HTTPS with --cert/--key as etcdctl
does) before and after, and the difference in MB. Both delete their prefix afterwards and honour
--auto-compact / --auto-defrag. Keys are built as etcdctl builds them: one reused buffer that
starts with binary.PutVarint(random int63), the rest zero bytes; values are zero bytes.

The progress bar is gopkg.in/cheggaaa/pb.v1 as etcdctl configures it: it goes to stdout whether
or not stdout is a terminal ("\\r"-separated updates every 200 ms), and draws the bar itself only
when the controlling terminal (/dev/tty) reports a width.

Test knobs (pyetcdctl only; etcdctl has no equivalent):
  PYETCDCTL_CHECK_PERF_SECONDS=<seconds>   shortens check perf's 60 s run;
  PYETCDCTL_CHECK_DATASCALE_KEYS=<count>   replaces check datascale's key-value count
                                           (s 10000, m 100000, l 1000000, xl 3000000); the
                                           "Start data scale check" line reports the count used.
"""
from __future__ import annotations

import math
import os
import random
import sys
import threading
import time

from pyetcd.cli.base import EXIT_BAD_FEATURE, EXIT_ERROR, EXIT_INVALID_INPUT, CliExit, fail
from pyetcd.cli.printer_simple import range_end_prefix

LOAD_ALIASES = {"s": "s", "small": "s", "m": "m", "medium": "m", "l": "l", "large": "l",
                "xl": "xl", "xLarge": "xl"}
# load -> (writes/s limit, clients, seconds), as etcdctl 3.5
PERF_LOADS = {"s": (150, 50, 60), "m": (1000, 200, 60), "l": (8000, 500, 60), "xl": (15000, 1000, 60)}
# load -> (key-value pairs, bytes per pair, clients)
DATASCALE_LOADS = {"s": (10000, 1024, 50), "m": (100000, 1024, 200), "l": (1000000, 1024, 500),
                   "xl": (3000000, 1024, 1000)}
RESIDENT_MEMORY_KEY = b"process_resident_memory_bytes"
_MAX_INT64 = (1 << 63) - 1


def _rpc():
    from pyetcd._pb.etcdserverpb import rpc_pb2
    return rpc_pb2


def _model(load: str) -> str:
    model = LOAD_ALIASES.get(load)
    if model is None:
        fail(EXIT_BAD_FEATURE, f"unknown load option {load}")
    return model


def _check_prefix_empty(c, prefix: str, quoted_cmd: bool = True):
    rpc = _rpc()
    p = prefix.encode()
    try:
        resp = c.call("Range", rpc.RangeRequest(key=p, range_end=range_end_prefix(p), limit=1))
    except Exception as e:  # noqa: BLE001 - EtcdError; grpc import deferred
        fail(EXIT_ERROR, e)
    if len(resp.kvs) > 0:
        cmd = f"etcdctl del --prefix {prefix}"
        if quoted_cmd:
            cmd = f"'{cmd}'"
        fail(EXIT_INVALID_INPUT, f'prefix "{prefix}" has keys. Delete with {cmd} first')


# --- keys, as etcdctl makes them ---------------------------------------------------------------

class KeyMaker:
    """prefix + string(k) where k is a reused []byte of `size` bytes and each key first does
    binary.PutVarint(k, rand.Int63n(math.MaxInt64)): bytes after the varint keep what earlier,
    longer varints left there."""

    def __init__(self, prefix: bytes, size: int, rng=None):
        self.prefix = prefix
        self.buf = bytearray(size)
        self.rng = rng or random.Random()

    def next(self) -> bytes:
        put_varint(self.buf, self.rng.randrange(_MAX_INT64))
        return self.prefix + bytes(self.buf)


def put_varint(buf: bytearray, x: int) -> int:
    """encoding/binary.PutVarint: zig-zag, then base-128 little-endian groups."""
    ux = (x << 1) & 0xFFFFFFFFFFFFFFFF
    if x < 0:
        ux ^= 0xFFFFFFFFFFFFFFFF
    i = 0
    while ux >= 0x80:
        buf[i] = (ux & 0x7F) | 0x80
        ux >>= 7
        i += 1
    buf[i] = ux
    return i + 1


# --- the progress bar (gopkg.in/cheggaaa/pb.v1, format "Bom !") -------------------------------

def _pb_duration(ns: int) -> str:
    """pb.v1's time-left format: [Nd][Nh]MMmSSs."""
    hour, day = 3600 * 10**9, 24 * 3600 * 10**9
    out = ""
    if ns > day:
        out += f"{ns // day}d"
        ns -= ns // day * day
    if ns > hour:
        out += f"{ns // hour}h"
        ns -= ns // hour * hour
    out += f"{ns // (60 * 10**9):02d}m"
    ns -= ns // (60 * 10**9) * 60 * 10**9
    return out + f"{ns // 10**9:02d}s"


def _tty_width() -> int:
    """pb.v1 asks /dev/tty (not stdout) for its width; no terminal, no bar."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return 0
    try:
        return os.get_terminal_size(fd).columns
    except OSError:
        return 0
    finally:
        os.close(fd)


class ProgressBar:
    REFRESH = 0.2  # pb.v1's default refresh rate

    def __init__(self, total: int, out=None):
        self.total, self.current = total, 0
        self.out = out or sys.stdout
        self._start = self._last = 0.0

    def start(self):
        self._start = time.monotonic()
        self._write(False)

    def tick(self):
        """Redraw if the refresh interval has passed (pb.v1 redraws from its own goroutine)."""
        if time.monotonic() - self._last >= self.REFRESH:
            self._write(False)

    def finish(self):
        self._write(True)
        self.out.write("\n")
        self.out.flush()

    def render(self, current: int, elapsed_ns: int, final: bool, width: int) -> str:
        total = self.total
        counters = f" {current} / {total} "
        percent = f" {current / (total / 100):6.2f}%" if total > 0 else ""
        left = ""
        if final:
            from pyetcd.cli.goutil import format_duration
            left = " " + format_duration(elapsed_ns // 10**9 * 10**9)
        elif current > 0:
            per_entry = elapsed_ns // current
            left_ns = (total - current) * per_entry // 10**9 * 10**9
            if left_ns > 0:
                left = " " + _pb_duration(left_ns)
        bar = ""
        size = width - len(counters + "B" + "!" + percent + left)
        if size > 0 and total > 0:
            cur_size = min(int(math.ceil(current / total * size)), size)
            empty = max(size - cur_size, 0)
            bar = "B"
            if empty <= 0:
                bar += "o" * cur_size
            elif cur_size > 0:
                bar += "o" * (cur_size - 1) + "m"
            bar += " " * empty + "!"
        out = counters + bar + percent + left
        if len(out) < width:
            out += " " * (width - len(out))
        return out

    def _write(self, final: bool):
        self._last = time.monotonic()
        elapsed = int((self._last - self._start) * 1e9)
        self.out.write("\r" + self.render(self.current, elapsed, final, _tty_width()))
        self.out.flush()


# --- concurrent puts ---------------------------------------------------------------------------

class PutLoad:
    """Puts with at most `clients` in flight, over the client's grpcio channel (futures complete
    on grpcio's own thread): per-request latency of the successes, and the error distribution
    keyed by the error text clientv3 would give."""

    def __init__(self, c, clients: int):
        rpc = _rpc()
        self._put = c.channel.unary_unary("/etcdserverpb.KV/Put",
                                          request_serializer=rpc.PutRequest.SerializeToString,
                                          response_deserializer=rpc.PutResponse.FromString)
        self._metadata = c.metadata
        self._clients = clients
        self._slots = threading.Semaphore(clients)
        self._lock = threading.Lock()
        self.latencies: list = []
        self.errors: dict = {}
        self.completed = 0

    def submit(self, request, idle=None):
        while not self._slots.acquire(timeout=0.05):
            if idle is not None:
                idle()
        t0 = time.monotonic()
        f = self._put.future(request, metadata=self._metadata, wait_for_ready=True)
        f.add_done_callback(lambda fut: self._done(fut, t0))

    def _done(self, fut, t0):
        took = time.monotonic() - t0
        exc = fut.exception()
        with self._lock:
            if exc is None:
                self.latencies.append(took)
            else:
                from pyetcd.cli.client import to_etcd_error
                msg = str(to_etcd_error(exc)) if hasattr(exc, "code") else str(exc)
                self.errors[msg] = self.errors.get(msg, 0) + 1
            self.completed += 1
        self._slots.release()

    def wait(self, idle=None):
        """Until every submitted put has completed."""
        for _ in range(self._clients):
            while not self._slots.acquire(timeout=0.05):
                if idle is not None:
                    idle()
        for _ in range(self._clients):
            self._slots.release()


# --- after the load: cleanup, compaction, defragmentation --------------------------------------

NO_DEADLINE = 7 * 24 * 3600.0  # etcdctl's context.Background()


def _delete_prefix(c, prefix: str, timeout=NO_DEADLINE):
    p = prefix.encode()
    return c.call("DeleteRange", _rpc().DeleteRangeRequest(key=p, range_end=range_end_prefix(p)),
                  timeout=timeout)


def _compact(c, rev: int):
    print(f"Compacting with revision {rev}", flush=True)
    try:
        c.call("Compact", _rpc().CompactionRequest(revision=rev, physical=True), timeout=30.0)
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, e)
    print(f"Compacted with revision {rev}", flush=True)


def _defrag_all(ctx):
    from pyetcd.cli.goutil import quote
    for ep in ctx.endpoints():
        print(f"Defragmenting {quote(ep)}", flush=True)
        try:
            c = ctx.client([ep])
            try:
                c.call("Defragment", _rpc().DefragmentRequest(), timeout=30.0)
            finally:
                c.close()
        except CliExit:
            raise
        except Exception as e:  # noqa: BLE001
            fail(EXIT_ERROR, e)
        print(f"Defragmented {quote(ep)}", flush=True)


# --- <endpoint>/metrics, as etcdctl's endpointMemoryMetrics reads it ----------------------------

class _GoError(Exception):
    """An error whose text is what Go's net/http (or crypto/tls) would print."""


def endpoint_memory_metrics(host: str, flags) -> float:
    """process_resident_memory_bytes from <host>/metrics; 0 (after etcdctl's message) on failure.
    Like etcdctl: no scheme means http://; https:// presents --cert/--key and verifies the server
    against the system roots (not --cacert) unless --insecure-skip-tls-verify."""
    if not host.startswith(("http://", "https://")):
        host = "http://" + host
    url = host + "/metrics"
    tls = None
    if host.startswith("https://"):
        try:
            tls = _metrics_tls(flags.get("cert") or "", flags.get("key") or "",
                               bool(flags.get("insecure-skip-tls-verify")))
        except _GoError as e:
            print(f"client certificate error: {e}")
            return 0.0
    from pyetcd.cli.goutil import quote
    try:
        body = _http_get(url, tls)
    except _GoError as e:
        print(f"fetch error: Get {quote(url)}: {e}")
        return 0.0
    except _BodyError as e:
        print(f"fetch error: reading {url}: {e}")
        return 0.0
    value = b""
    for line in body.split(b"\n"):
        if line.startswith(RESIDENT_MEMORY_KEY):
            value = line[len(RESIDENT_MEMORY_KEY):].strip()
            break
    if value == b"":
        print(f"could not find: {RESIDENT_MEMORY_KEY.decode()}")
        return 0.0
    try:
        return parse_float(value)
    except ValueError as e:
        print(f"parse error: {e}")
        return 0.0


class _BodyError(Exception):
    pass


def _metrics_tls(cert: str, key: str, skip_verify: bool):
    import ssl
    for path in (cert, key):  # tls.LoadX509KeyPair reads the certificate file first
        if not os.path.isfile(path):
            raise _GoError(f"open {path}: no such file or directory")
    tls = ssl.create_default_context()
    try:
        tls.load_cert_chain(cert, key)
    except ssl.SSLError as e:
        raise _GoError("tls: private key does not match public key"
                       if "KEY_VALUES_MISMATCH" in str(e) else f"tls: {e.reason or e}") from None
    if skip_verify:
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    return tls


def _split_host_port(url: str):
    secure = url.startswith("https://")
    rest = url.split("://", 1)[1]
    hostport, slash, path = rest.partition("/")
    if hostport.startswith("["):
        host, _, port = hostport[1:].partition("]")
        port = port[1:]
    else:
        host, sep, port = hostport.rpartition(":")
        if not sep:
            host, port = hostport, ""
    return host, int(port) if port.isdigit() else (443 if secure else 80), "/" + path


def _dial(host: str, port: int):
    import socket
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise _GoError(f"dial tcp: lookup {host}: no such host") from None
    first = None
    for family, kind, proto, _, addr in infos:
        s = socket.socket(family, kind, proto)
        s.settimeout(30.0)  # http.DefaultTransport's dial timeout
        try:
            s.connect(addr)
            s.settimeout(None)
            return s
        except OSError as e:
            s.close()
            where = f"[{addr[0]}]:{addr[1]}" if family == socket.AF_INET6 else f"{addr[0]}:{addr[1]}"
            if first is None:
                first = (f"dial tcp {where}: i/o timeout" if isinstance(e, TimeoutError) else
                         f"dial tcp {where}: connect: {(e.strerror or str(e)).lower()}")
    raise _GoError(first or f"dial tcp: lookup {host}: no such host")


def _http_get(url: str, tls) -> bytes:
    """GET url over HTTP/1.1; errors worded as Go's http.Get words them."""
    import ssl
    host, port, path = _split_host_port(url)
    sock = _dial(host, port)
    try:
        if tls is not None:
            try:
                sock = tls.wrap_socket(sock, server_hostname=host)
            except ssl.SSLCertVerificationError as e:
                raise _GoError(_x509_error(e)) from None
            except (ssl.SSLError, OSError) as e:
                raise _GoError(f"remote error: tls: {getattr(e, 'reason', None) or e}") from None
        hp = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {hp}\r\nUser-Agent: pyetcdctl\r\n"
                     f"Connection: close\r\n\r\n".encode())
        f = sock.makefile("rb")
        try:
            return _read_response(f)
        finally:
            f.close()
    except OSError as e:
        raise _GoError(f"read tcp: {(e.strerror or str(e)).lower()}") from None
    finally:
        sock.close()


def _read_response(f) -> bytes:
    line = f.readline()
    if not line:
        raise _GoError("EOF")
    line = line[:-1] if line.endswith(b"\n") else line
    line = line[:-1] if line.endswith(b"\r") else line
    proto, sp, status = line.partition(b" ")
    if not sp:
        raise _GoError("net/http: HTTP/1.x transport connection broken: malformed HTTP response "
                       + _quote_go(line))
    code = status.partition(b" ")[0]
    if len(code) != 3 or not code.isdigit():
        raise _GoError("net/http: HTTP/1.x transport connection broken: malformed HTTP status code "
                       + _quote_go(code))
    if not (proto.startswith(b"HTTP/") and proto[5:6].isdigit()):
        raise _GoError("net/http: HTTP/1.x transport connection broken: malformed HTTP version "
                       + _quote_go(proto))
    headers = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, val = h.partition(b":")
        headers[name.strip().lower()] = val.strip()
    if int(code) in (204, 304) or 100 <= int(code) < 200:
        return b""
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        out = bytearray()
        while True:
            size_line = f.readline()
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BodyError("unexpected EOF" if not size_line else "malformed chunked encoding") from None
            if size == 0:
                return bytes(out)
            chunk = f.read(size)
            if len(chunk) < size:
                raise _BodyError("unexpected EOF")
            out += chunk
            f.readline()
    if b"content-length" in headers:
        n = int(headers[b"content-length"])
        body = f.read(n)
        if len(body) < n:
            raise _BodyError("unexpected EOF")
        return body
    return f.read()


def _quote_go(b: bytes) -> str:
    """strconv.Quote; DEL is \\u007f in Go."""
    from pyetcd.cli.goutil import quote
    parts = [quote(p)[1:-1] for p in b.split(b"\x7f")]
    return '"' + "\\u007f".join(parts) + '"'


def _x509_error(e) -> str:
    code = getattr(e, "verify_code", 0)
    if code in (2, 18, 19, 20, 21):
        return "x509: certificate signed by unknown authority"
    if code in (9, 10):
        return "x509: certificate has expired or is not yet valid"
    if code == 62:
        return "x509: certificate is not valid for this host"
    return f"x509: {getattr(e, 'verify_message', '') or e}"


def parse_float(b: bytes) -> float:
    """strconv.ParseFloat(s, 64); ValueError carries Go's message."""
    import re
    from pyetcd.cli.goutil import quote
    s = b.decode("utf-8", "surrogateescape")
    bad = ValueError(f"strconv.ParseFloat: parsing {quote(b)}: invalid syntax")
    low = s.lower()
    if low in ("inf", "+inf", "infinity", "+infinity"):
        return math.inf
    if low in ("-inf", "-infinity"):
        return -math.inf
    if low == "nan":
        return math.nan
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s):
        v = float(s)
    elif re.fullmatch(r"[+-]?0[xX][0-9a-fA-F_]*\.?[0-9a-fA-F_]*[pP][+-]?\d+", s):
        try:
            v = float.fromhex(s.replace("_", ""))
        except OverflowError:
            v = math.inf
        except ValueError:
            raise bad from None
    else:
        raise bad
    if math.isinf(v):
        raise ValueError(f"strconv.ParseFloat: parsing {quote(b)}: value out of range")
    return v


# --- check perf --------------------------------------------------------------------------------

def perf_cmd(ctx):
    limit, clients, duration = PERF_LOADS[_model(ctx.flags["load"])]
    duration = float(os.environ.get("PYETCDCTL_CHECK_PERF_SECONDS", duration))
    c = ctx.client()
    prefix = ctx.flags["prefix"]
    _check_prefix_empty(c, prefix)
    rpc = _rpc()
    load = PutLoad(c, clients)
    keys = KeyMaker(prefix.encode(), 256)
    value = bytes(1024)
    bar = ProgressBar(max(int(duration), 1))
    interval = 1.0 / limit

    def idle():
        bar.current = min(int(time.monotonic() - start), bar.total)
        bar.tick()

    start = time.monotonic()
    bar.start()
    deadline = start + duration
    next_slot = start
    interrupted = False
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            if next_slot > now:
                idle()
                time.sleep(min(next_slot - now, deadline - now, ProgressBar.REFRESH))
                continue
            next_slot = max(next_slot, now) + interval  # rate.Limiter with a burst of 1
            load.submit(rpc.PutRequest(key=keys.next(), value=value), idle)
    except KeyboardInterrupt:  # interruptableContext: stop the load and clean up at once
        interrupted = True
        _attempt_cleanup(ctx, c, prefix, False)
    load.wait(idle)
    took = time.monotonic() - start
    if not interrupted:
        bar.current = bar.total
    bar.finish()
    _attempt_cleanup(ctx, c, prefix, ctx.flags["auto-compact"])
    if ctx.flags["auto-defrag"]:
        _defrag_all(ctx)
    _perf_verdict(load, took, limit)


def _attempt_cleanup(ctx, c, prefix, auto_compact):
    try:
        resp = _delete_prefix(c, prefix, timeout=30.0)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL: Cleanup failed during key deletion: ERROR({e})", flush=True)
        return
    if auto_compact:
        _compact(c, resp.header.revision)


def _perf_verdict(load, took, limit):
    import statistics
    ok = True
    if load.errors:
        print("FAIL: too many errors")
        for k, v in load.errors.items():
            print(f"FAIL: ERROR({k}) -> {v}")
        ok = False
    lat = load.latencies
    rps = len(lat) / took if took > 0 else 0.0
    if rps / limit <= 0.9:
        print(f"FAIL: Throughput too low: {int(rps) + 1} writes/s")
        ok = False
    else:
        print(f"PASS: Throughput is {int(rps) + 1} writes/s")
    slowest = max(lat) if lat else 0.0
    if slowest > 0.5:
        print(f"Slowest request took too long: {slowest:f}s")  # sic: etcdctl has no FAIL: here
        ok = False
    else:
        print(f"PASS: Slowest request took {slowest:f}s")
    sd = statistics.pstdev(lat) if len(lat) > 1 else 0.0
    if sd > 0.1:
        print(f"Stddev too high: {sd:f}s")  # sic, as etcdctl
        ok = False
    else:
        print(f"PASS: Stddev is {sd:f}s")
    print("PASS" if ok else "FAIL")
    if not ok:
        raise CliExit(EXIT_ERROR)


# --- check datascale ---------------------------------------------------------------------------

def datascale_cmd(ctx):
    count, kv_size, clients = DATASCALE_LOADS[_model(ctx.flags["load"])]
    if os.environ.get("PYETCDCTL_CHECK_DATASCALE_KEYS"):
        count = int(os.environ["PYETCDCTL_CHECK_DATASCALE_KEYS"])
    c = ctx.client()
    eps = ctx.endpoints()
    prefix = ctx.flags["prefix"]
    _check_prefix_empty(c, prefix, quoted_cmd=False)
    rpc = _rpc()

    before = endpoint_memory_metrics(eps[0], ctx.flags)
    if before == 0:
        print("FAIL: Could not read process_resident_memory_bytes before the put operations.")
        raise CliExit(EXIT_ERROR)
    print(f"Start data scale check for work load [{count} key-value pairs, {kv_size} bytes per "
          f"key-value, {clients} concurrent clients].", flush=True)
    bar = ProgressBar(count)
    load = PutLoad(c, clients)

    def idle():
        bar.current = load.completed
        bar.tick()

    bar.start()
    keys = KeyMaker(prefix.encode(), 512)
    value = bytes(512)
    for _ in range(count):
        load.submit(rpc.PutRequest(key=keys.next(), value=value), idle)
        idle()
    load.wait(idle)
    bar.current = load.completed
    bar.finish()

    after = endpoint_memory_metrics(eps[0], ctx.flags)
    if after == 0:
        print("FAIL: Could not read process_resident_memory_bytes after the put operations.")
        raise CliExit(EXIT_ERROR)
    try:
        dresp = _delete_prefix(c, prefix)
    except Exception as e:  # noqa: BLE001
        fail(EXIT_ERROR, e)
    if ctx.flags["auto-compact"]:
        _compact(c, dresp.header.revision)
    if ctx.flags["auto-defrag"]:
        _defrag_all(ctx)
    if load.errors:
        print("FAIL: too many errors")
        for k, v in load.errors.items():
            print(f"FAIL: ERROR({k}) -> {v}")
        raise CliExit(EXIT_ERROR)
    mb_used = (after - before) / (1024 * 1024)
    print(f"PASS: Approximate system memory used : {format_float_f2(mb_used)} MB.")


def format_float_f2(f: float) -> str:
    """strconv.FormatFloat(f, 'f', 2, 64)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    return f"{f:.2f}"
