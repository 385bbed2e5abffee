"""A minimal gRPC-over-HTTP/2 (cleartext) client for unary calls.

Why: importing grpcio costs more than everything else pyetcdctl does for a `get`. A unary etcd
call needs little of HTTP/2: one connection, one stream, HEADERS + DATA out, HEADERS/DATA/trailers
back. Header blocks go through the `hpack` package (Huffman and dynamic table). Anything this
client cannot do (TLS, streams, a refused connection that must wait for the deadline) falls back
to grpcio in pyetcd.cli.client, so behaviour is the same either way.
"""
from __future__ import annotations

import _socket  # the C module: socket.py's enum set-up costs more than a whole call
import struct
import sys


def _import_hpack():
    """hpack only ever calls logging.getLogger(...).debug(...); importing the real logging package
    costs more than the rest of a `get`, so when nothing has loaded logging yet, hpack gets a
    silent stand-in for the duration of its import (the real module stays importable after)."""
    if "logging" in sys.modules:
        import hpack as mod
        return mod
    import types

    class _Quiet:
        def debug(self, *a, **k):
            pass

    shim = types.ModuleType("logging")
    shim.getLogger = lambda name=None: _Quiet()
    sys.modules["logging"] = shim
    try:
        import hpack as mod
    finally:
        if sys.modules.get("logging") is shim:
            del sys.modules["logging"]
    return mod


hpack = _import_hpack()  # pip package `hpack`; callers fall back to grpcio when it is missing

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK, PADDED, PRIORITY = 0x1, 0x4, 0x1, 0x8, 0x20
_BIG_WINDOW = 2**31 - 1


class ConnectError(Exception):
    """Could not reach the endpoint: let grpcio handle it (it waits for the deadline like clientv3)."""


class CallError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _frame(ftype: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


class Conn:
    def __init__(self, hostport: str, timeout: float):
        host, _, port = hostport.rpartition(":")
        self.authority = hostport
        host = host.strip("[]")
        try:
            if host.replace(".", "").isdigit():  # IPv4 literal: skip name resolution (and idna)
                self.sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect((host, int(port)))
            else:
                import socket
                self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        except (OSError, ValueError) as e:
            raise ConnectError(str(e))
        self.sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.enc, self.dec = hpack.Encoder(), hpack.Decoder()
        self.buf = b""
        self.next_stream = 1
        settings = struct.pack(">HI", 0x4, _BIG_WINDOW) + struct.pack(">HI", 0x2, 0)  # window, no push
        self.sock.sendall(PREFACE + _frame(SETTINGS, 0, 0, settings)
                          + _frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", _BIG_WINDOW - 65535)))

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise CallError(14, "connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _next_frame(self):
        h = self._read(9)
        length = int.from_bytes(h[:3], "big")
        return h[3], h[4], int.from_bytes(h[5:9], "big") & 0x7FFFFFFF, self._read(length)

    def unary(self, path: str, message: bytes, metadata=()) -> bytes:
        sid = self.next_stream
        self.next_stream += 2
        hdrs = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", self.authority),
                ("content-type", "application/grpc"), ("te", "trailers"), *metadata]
        block = self.enc.encode(hdrs)
        body = b"\x00" + struct.pack(">I", len(message)) + message
        self.sock.sendall(_frame(HEADERS, END_HEADERS, sid, block) + _frame(DATA, END_STREAM, sid, body))
        data = bytearray()
        headers: dict = {}
        block, block_flags = b"", 0
        while True:
            ftype, flags, stream, payload = self._next_frame()
            if ftype == SETTINGS:
                if not flags & ACK:
                    self.sock.sendall(_frame(SETTINGS, ACK, 0, b""))
                continue
            if ftype == PING:
                if not flags & ACK:
                    self.sock.sendall(_frame(PING, ACK, 0, payload))
                continue
            if ftype == GOAWAY:
                raise CallError(14, "server sent GOAWAY")
            if stream != sid:
                continue
            if ftype == RST_STREAM:
                raise CallError(14, f"stream reset (code {int.from_bytes(payload[:4], 'big')})")
            if ftype in (HEADERS, CONTINUATION):
                if ftype == HEADERS:
                    if flags & PADDED:
                        payload = payload[1:len(payload) - payload[0]]
                    if flags & PRIORITY:
                        payload = payload[5:]
                    block_flags = flags
                block += payload
                if flags & END_HEADERS:
                    for k, v in self.dec.decode(block, raw=True):
                        headers[k.decode()] = v.decode("utf-8", "replace")
                    block = b""
                    if block_flags & END_STREAM:
                        break
                continue
            if ftype == DATA:
                if flags & PADDED:
                    payload = payload[1:len(payload) - payload[0]]
                data += payload
                if flags & END_STREAM:
                    break
        status = int(headers.get("grpc-status", "2" if not data else "0"))
        if status != 0:
            from urllib.parse import unquote
            raise CallError(status, unquote(headers.get("grpc-message", "")))
        if len(data) < 5:
            raise CallError(13, "missing response message")
        n = int.from_bytes(data[1:5], "big")
        return bytes(data[5:5 + n])

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
