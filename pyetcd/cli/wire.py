"""Hand-written protobuf codec for the hottest call, KV.Range, so that `pyetcdctl get` with the
simple/fields printers never imports the protobuf runtime or the generated rpc module.
Field numbers are etcd's (rpc.proto RangeRequest/RangeResponse, kv.proto KeyValue)."""
from __future__ import annotations

# RangeRequest field name -> (number, wire type 0 varint / 2 bytes)
_RANGE_REQ = {"key": (1, 2), "range_end": (2, 2), "limit": (3, 0), "revision": (4, 0), "sort_order": (5, 0),
              "sort_target": (6, 0), "serializable": (7, 0), "keys_only": (8, 0), "count_only": (9, 0)}


def _varint(v: int) -> bytes:
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def encode_range_request(fields: dict) -> bytes:
    out = bytearray()
    for name, (num, wt) in _RANGE_REQ.items():
        v = fields.get(name)
        if not v:
            continue
        out += _varint(num << 3 | wt)
        if wt == 2:
            out += _varint(len(v)) + v
        else:
            out += _varint(int(v))
    return bytes(out)


def _read_varint(b: bytes, i: int):
    shift = v = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7


def _fields(b: bytes):
    i, n = 0, len(b)
    while i < n:
        tag, i = _read_varint(b, i)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = _read_varint(b, i)
        elif wt == 2:
            ln, i = _read_varint(b, i)
            v, i = b[i:i + ln], i + ln
        elif wt == 1:
            v, i = int.from_bytes(b[i:i + 8], "little"), i + 8
        elif wt == 5:
            v, i = int.from_bytes(b[i:i + 4], "little"), i + 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        yield num, v


def _i64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


class Header:
    __slots__ = ("cluster_id", "member_id", "revision", "raft_term")

    def __init__(self, b: bytes = b""):
        self.cluster_id = self.member_id = self.revision = self.raft_term = 0
        for num, v in _fields(b):
            if num == 1:
                self.cluster_id = v
            elif num == 2:
                self.member_id = v
            elif num == 3:
                self.revision = _i64(v)
            elif num == 4:
                self.raft_term = v


class KeyValue:
    __slots__ = ("key", "create_revision", "mod_revision", "version", "value", "lease")

    def __init__(self, b: bytes):
        self.key = self.value = b""
        self.create_revision = self.mod_revision = self.version = self.lease = 0
        for num, v in _fields(b):
            if num == 1:
                self.key = bytes(v)
            elif num == 2:
                self.create_revision = _i64(v)
            elif num == 3:
                self.mod_revision = _i64(v)
            elif num == 4:
                self.version = _i64(v)
            elif num == 5:
                self.value = bytes(v)
            elif num == 6:
                self.lease = _i64(v)


class RangeResponse:
    __slots__ = ("header", "kvs", "more", "count")

    def __init__(self, b: bytes):
        self.header, self.kvs, self.more, self.count = Header(), [], False, 0
        for num, v in _fields(b):
            if num == 1:
                self.header = Header(v)
            elif num == 2:
                self.kvs.append(KeyValue(v))
            elif num == 3:
                self.more = bool(v)
            elif num == 4:
                self.count = _i64(v)
