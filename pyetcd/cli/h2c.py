"""A minimal gRPC-over-HTTP/2 (cleartext) client for unary calls.

Why: importing grpcio costs more than everything else pyetcdctl does for a `get`. A unary etcd
call needs little of HTTP/2: one connection, one stream, HEADERS + DATA out, HEADERS/DATA/trailers
back. Header blocks are HPACK (RFC 7541): requests go out as literals (no Huffman, no indexing,
which every decoder accepts); responses are decoded in full (static and dynamic table, Huffman).
Importing the `hpack` package cost about as much as all of pyetcdctl's own modules, so the few
lines HPACK decoding needs live here. Anything this client cannot do (TLS, streams, a refused
connection that must wait for the deadline) falls back to grpcio in pyetcd.cli.client, so
behaviour is the same either way.
"""
from __future__ import annotations

import _socket  # the C module: socket.py's enum set-up costs more than a whole call
import struct

# --- HPACK (RFC 7541) -------------------------------------------------------------------------

# Appendix A: the static table (index 1..61)
_STATIC = [(b":authority", b""), (b":method", b"GET"), (b":method", b"POST"), (b":path", b"/"),
           (b":path", b"/index.html"), (b":scheme", b"http"), (b":scheme", b"https"),
           (b":status", b"200"), (b":status", b"204"), (b":status", b"206"), (b":status", b"304"),
           (b":status", b"400"), (b":status", b"404"), (b":status", b"500"), (b"accept-charset", b""),
           (b"accept-encoding", b"gzip, deflate"), (b"accept-language", b""), (b"accept-ranges", b""),
           (b"accept", b""), (b"access-control-allow-origin", b""), (b"age", b""), (b"allow", b""),
           (b"authorization", b""), (b"cache-control", b""), (b"content-disposition", b""),
           (b"content-encoding", b""), (b"content-language", b""), (b"content-length", b""),
           (b"content-location", b""), (b"content-range", b""), (b"content-type", b""), (b"cookie", b""),
           (b"date", b""), (b"etag", b""), (b"expect", b""), (b"expires", b""), (b"from", b""),
           (b"host", b""), (b"if-match", b""), (b"if-modified-since", b""), (b"if-none-match", b""),
           (b"if-range", b""), (b"if-unmodified-since", b""), (b"last-modified", b""), (b"link", b""),
           (b"location", b""), (b"max-forwards", b""), (b"proxy-authenticate", b""),
           (b"proxy-authorization", b""), (b"range", b""), (b"referer", b""), (b"refresh", b""),
           (b"retry-after", b""), (b"server", b""), (b"set-cookie", b""),
           (b"strict-transport-security", b""), (b"transfer-encoding", b""), (b"user-agent", b""),
           (b"vary", b""), (b"via", b""), (b"www-authenticate", b"")]

# Appendix B: code lengths of symbols 0..256 (256 = EOS). The code is canonical (codes of one
# length are consecutive in symbol order), so the lengths determine every code.
_HUFFMAN_LENGTHS = bytes([
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5,
    6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6,
    7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23,
    23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22,
    22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22,
    23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27,
    27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25,
    24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30])
_huffman = None  # (first code, first position in the symbol order, count) per length; the order


class HpackError(Exception):
    pass


def _canonical_order() -> list:
    return sorted(range(257), key=_HUFFMAN_LENGTHS.__getitem__)  # stable: ties in symbol order


def huffman_codes() -> dict:
    """symbol -> (code, length), from the canonical code lengths."""
    codes, code, prev = {}, -1, 0
    for sym in _canonical_order():
        ln = _HUFFMAN_LENGTHS[sym]
        code = (code + 1) << (ln - prev)
        prev = ln
        codes[sym] = (code, ln)
    return codes


def _huffman_tables():
    """Per code length: [first code, its position in the canonical order, how many codes]."""
    global _huffman
    if _huffman is None:
        codes, order, per_len = huffman_codes(), _canonical_order(), {}
        for pos, sym in enumerate(order):
            code, ln = codes[sym]
            per_len.setdefault(ln, [code, pos, 0])[2] += 1
        _huffman = (per_len, order)
    return _huffman


def huffman_decode(data: bytes) -> bytes:
    per_len, order = _huffman_tables()
    out = bytearray()
    acc = n = 0
    for byte in data:
        for shift in range(7, -1, -1):
            acc = (acc << 1) | ((byte >> shift) & 1)
            n += 1
            entry = per_len.get(n)
            if entry is not None and acc - entry[0] < entry[2]:
                sym = order[entry[1] + acc - entry[0]]
                if sym == 256:
                    raise HpackError("EOS in Huffman string")
                out.append(sym)
                acc = n = 0
    if n > 7 or acc != (1 << n) - 1:  # padding: at most 7 bits, all ones (a prefix of EOS)
        raise HpackError("bad Huffman padding")
    return bytes(out)


def _int(block: bytes, pos: int, prefix_bits: int):
    mask = (1 << prefix_bits) - 1
    value = block[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    while True:
        b = block[pos]
        pos += 1
        value += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _string(block: bytes, pos: int):
    huff = block[pos] & 0x80
    length, pos = _int(block, pos, 7)
    raw = block[pos:pos + length]
    if len(raw) < length:
        raise HpackError("truncated string")
    return (huffman_decode(raw) if huff else bytes(raw)), pos + length


class Decoder:
    """Header block -> [(name, value)] as bytes, keeping the dynamic table across blocks."""

    def __init__(self, max_size: int = 4096):
        self.table: list = []  # newest first
        self.size = 0
        self.max_size = max_size

    def _entry(self, index: int):
        if 1 <= index <= len(_STATIC):
            return _STATIC[index - 1]
        if 0 <= index - len(_STATIC) - 1 < len(self.table):
            return self.table[index - len(_STATIC) - 1]
        raise HpackError(f"invalid table index {index}")

    def _add(self, name: bytes, value: bytes):
        self.table.insert(0, (name, value))
        self.size += len(name) + len(value) + 32
        self._evict()

    def _evict(self):
        while self.size > self.max_size and self.table:
            n, v = self.table.pop()
            self.size -= len(n) + len(v) + 32

    def decode(self, block: bytes) -> list:
        out, pos = [], 0
        while pos < len(block):
            b = block[pos]
            if b & 0x80:  # indexed field
                index, pos = _int(block, pos, 7)
                out.append(self._entry(index))
                continue
            if b & 0xE0 == 0x20:  # dynamic table size update
                self.max_size, pos = _int(block, pos, 5)
                self._evict()
                continue
            indexing = b & 0xC0 == 0x40
            index, pos = _int(block, pos, 6 if indexing else 4)
            if index:
                name = self._entry(index)[0]
            else:
                name, pos = _string(block, pos)
            value, pos = _string(block, pos)
            if indexing:
                self._add(name, value)
            out.append((name, value))
        return out


def _hpack_int(value: int, prefix_bits: int) -> bytes:
    mask = (1 << prefix_bits) - 1
    if value < mask:
        return bytes([value])
    out = bytearray([mask])
    value -= mask
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_literals(headers) -> bytes:
    """Literal header fields without indexing, new names, no Huffman (RFC 7541 6.2.2)."""
    out = bytearray()
    for name, value in headers:
        out.append(0)
        for s in (name, value):
            s = s.encode() if isinstance(s, str) else s
            out += _hpack_int(len(s), 7) + s
    return bytes(out)


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
        self.dec = Decoder()
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
        block = encode_literals(hdrs)
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
                    try:
                        fields = self.dec.decode(block)
                    except (HpackError, IndexError) as e:  # IndexError: a truncated block
                        raise CallError(13, f"hpack: {e or 'truncated header block'}") from None
                    for k, v in fields:
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
