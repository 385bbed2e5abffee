"""etcd's on-disk protobuf messages, encoded byte for byte as gogoproto's Marshal does.

etcd's raftpb, walpb, snappb and etcdserverpb.Metadata are proto2 messages compiled with
gogoproto. Two rules make their bytes differ from what a proto3 encoder writes:

- a field marked ``(gogoproto.nullable) = false`` is a plain Go value, so Marshal always writes
  it, zero or not (``HardState{}`` is ``08 00 10 00 18 00``, not empty);
- repeated uint64 fields are proto2, so unpacked: one tag per element.

Fields are written in field-number order (gogo's generated MarshalToSizedBuffer fills the buffer
backwards from the highest number). Nullable fields (``bytes``, pointer messages) are written
only when set (not None). The decoders accept any order and skip unknown fields, as gogo's do.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# raftpb.EntryType
ENTRY_NORMAL, ENTRY_CONF_CHANGE, ENTRY_CONF_CHANGE_V2 = 0, 1, 2
# raftpb.ConfChangeType
CONF_CHANGE_ADD_NODE, CONF_CHANGE_REMOVE_NODE, CONF_CHANGE_UPDATE_NODE, CONF_CHANGE_ADD_LEARNER = 0, 1, 2, 3


class DecodeError(ValueError):
    pass


# --- primitive encoding --------------------------------------------------------------------------
def uvarint(v: int) -> bytes:
    if v < 0:
        v &= 0xFFFFFFFFFFFFFFFF  # Go int64 → two's complement, 10 bytes
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _tag(num: int, wire: int) -> bytes:
    return uvarint(num << 3 | wire)


def f_varint(num: int, v: int) -> bytes:
    return _tag(num, 0) + uvarint(int(v))


def f_bytes(num: int, v: bytes) -> bytes:
    return _tag(num, 2) + uvarint(len(v)) + bytes(v)


def f_bool(num: int, v: bool) -> bytes:
    return _tag(num, 0) + (b"\x01" if v else b"\x00")


def read_uvarint(b: bytes, i: int) -> tuple[int, int]:
    r = s = 0
    while True:
        if i >= len(b):
            raise DecodeError("unexpected EOF")
        c = b[i]
        i += 1
        if s >= 64:
            raise DecodeError("integer overflow")
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r & 0xFFFFFFFFFFFFFFFF, i


def iter_fields(b: bytes):
    """(field number, wire type, value) of each field; value is an int or bytes."""
    b = bytes(b)
    i = 0
    while i < len(b):
        key, i = read_uvarint(b, i)
        num, wire = key >> 3, key & 7
        if num <= 0:
            raise DecodeError(f"illegal tag {num} (wire type {wire})")
        if wire == 0:
            v, i = read_uvarint(b, i)
        elif wire == 1:
            if i + 8 > len(b):
                raise DecodeError("unexpected EOF")
            v, i = int.from_bytes(b[i:i + 8], "little"), i + 8
        elif wire == 2:
            n, i = read_uvarint(b, i)
            if i + n > len(b):
                raise DecodeError("unexpected EOF")
            v, i = b[i:i + n], i + n
        elif wire == 5:
            if i + 4 > len(b):
                raise DecodeError("unexpected EOF")
            v, i = int.from_bytes(b[i:i + 4], "little"), i + 4
        else:
            raise DecodeError(f"illegal wireType {wire}")
        yield num, wire, v


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _packed_or_single(wire: int, v) -> list[int]:
    if wire == 0:
        return [v]
    out, i = [], 0  # a packed encoding is also accepted by gogo's decoders
    while i < len(v):
        x, i = read_uvarint(v, i)
        out.append(x)
    return out


# --- raftpb --------------------------------------------------------------------------------------
@dataclass
class Entry:
    term: int = 0
    index: int = 0
    type: int = ENTRY_NORMAL
    data: bytes | None = None

    def marshal(self) -> bytes:
        out = f_varint(1, self.type) + f_varint(2, self.term) + f_varint(3, self.index)
        if self.data is not None:
            out += f_bytes(4, self.data)
        return out

    @classmethod
    def unmarshal(cls, b: bytes) -> "Entry":
        e = cls()
        for num, _w, v in iter_fields(b):
            if num == 1:
                e.type = v
            elif num == 2:
                e.term = v
            elif num == 3:
                e.index = v
            elif num == 4:
                e.data = v
        return e


@dataclass
class HardState:
    term: int = 0
    vote: int = 0
    commit: int = 0

    def marshal(self) -> bytes:
        return f_varint(1, self.term) + f_varint(2, self.vote) + f_varint(3, self.commit)

    @classmethod
    def unmarshal(cls, b: bytes) -> "HardState":
        h = cls()
        for num, _w, v in iter_fields(b):
            if num == 1:
                h.term = v
            elif num == 2:
                h.vote = v
            elif num == 3:
                h.commit = v
        return h

    def is_empty(self) -> bool:
        return self.term == 0 and self.vote == 0 and self.commit == 0


@dataclass
class ConfState:
    voters: list[int] = field(default_factory=list)
    learners: list[int] = field(default_factory=list)
    voters_outgoing: list[int] = field(default_factory=list)
    learners_outgoing: list[int] = field(default_factory=list)
    auto_leave: bool = False

    def marshal(self) -> bytes:
        out = b"".join(f_varint(1, x) for x in self.voters)
        out += b"".join(f_varint(2, x) for x in self.learners)
        out += b"".join(f_varint(3, x) for x in self.voters_outgoing)
        out += b"".join(f_varint(4, x) for x in self.learners_outgoing)
        return out + f_bool(5, self.auto_leave)

    @classmethod
    def unmarshal(cls, b: bytes) -> "ConfState":
        c = cls()
        lists = {1: c.voters, 2: c.learners, 3: c.voters_outgoing, 4: c.learners_outgoing}
        for num, w, v in iter_fields(b):
            if num in lists:
                lists[num].extend(_packed_or_single(w, v))
            elif num == 5:
                c.auto_leave = bool(v)
        return c


@dataclass
class ConfChange:
    type: int = CONF_CHANGE_ADD_NODE
    node_id: int = 0
    context: bytes | None = None
    id: int = 0

    def marshal(self) -> bytes:
        out = f_varint(1, self.id) + f_varint(2, self.type) + f_varint(3, self.node_id)
        if self.context is not None:
            out += f_bytes(4, self.context)
        return out

    @classmethod
    def unmarshal(cls, b: bytes) -> "ConfChange":
        c = cls()
        for num, _w, v in iter_fields(b):
            if num == 1:
                c.id = v
            elif num == 2:
                c.type = v
            elif num == 3:
                c.node_id = v
            elif num == 4:
                c.context = v
        return c


@dataclass
class SnapshotMetadata:
    conf_state: ConfState = field(default_factory=ConfState)
    index: int = 0
    term: int = 0

    def marshal(self) -> bytes:
        return f_bytes(1, self.conf_state.marshal()) + f_varint(2, self.index) + f_varint(3, self.term)

    @classmethod
    def unmarshal(cls, b: bytes) -> "SnapshotMetadata":
        m = cls()
        for num, _w, v in iter_fields(b):
            if num == 1:
                m.conf_state = ConfState.unmarshal(v)
            elif num == 2:
                m.index = v
            elif num == 3:
                m.term = v
        return m


@dataclass
class Snapshot:
    """raftpb.Snapshot: ``data`` is the v2 store's JSON in etcd 3.5."""
    data: bytes | None = None
    metadata: SnapshotMetadata = field(default_factory=SnapshotMetadata)

    def marshal(self) -> bytes:
        out = f_bytes(1, self.data) if self.data is not None else b""
        return out + f_bytes(2, self.metadata.marshal())

    @classmethod
    def unmarshal(cls, b: bytes) -> "Snapshot":
        s = cls()
        for num, _w, v in iter_fields(b):
            if num == 1:
                s.data = v
            elif num == 2:
                s.metadata = SnapshotMetadata.unmarshal(v)
        return s


# --- walpb, snappb, etcdserverpb -----------------------------------------------------------------
@dataclass
class Record:
    """walpb.Record: one framed WAL record."""
    type: int = 0
    crc: int = 0
    data: bytes | None = None

    def marshal(self) -> bytes:
        out = f_varint(1, self.type) + f_varint(2, self.crc)
        if self.data is not None:
            out += f_bytes(3, self.data)
        return out

    @classmethod
    def unmarshal(cls, b: bytes) -> "Record":
        r = cls()
        for num, _w, v in iter_fields(b):
            if num == 1:
                r.type = _signed(v)
            elif num == 2:
                r.crc = v & 0xFFFFFFFF
            elif num == 3:
                r.data = v
        return r


@dataclass
class WalSnapshot:
    """walpb.Snapshot: a snapshot marker in the WAL. ``conf_state`` is a nullable pointer."""
    index: int = 0
    term: int = 0
    conf_state: ConfState | None = None

    def marshal(self) -> bytes:
        out = f_varint(1, self.index) + f_varint(2, self.term)
        if self.conf_state is not None:
            out += f_bytes(3, self.conf_state.marshal())
        return out

    @classmethod
    def unmarshal(cls, b: bytes) -> "WalSnapshot":
        s = cls()
        for num, _w, v in iter_fields(b):
            if num == 1:
                s.index = v
            elif num == 2:
                s.term = v
            elif num == 3:
                s.conf_state = ConfState.unmarshal(v)
        return s


@dataclass
class SnapFile:
    """snappb.Snapshot: the body of a ``.snap`` file."""
    crc: int = 0
    data: bytes | None = None

    def marshal(self) -> bytes:
        out = f_varint(1, self.crc)
        if self.data is not None:
            out += f_bytes(2, self.data)
        return out

    @classmethod
    def unmarshal(cls, b: bytes) -> "SnapFile":
        s = cls()
        for num, _w, v in iter_fields(b):
            if num == 1:
                s.crc = v & 0xFFFFFFFF
            elif num == 2:
                s.data = v
        return s


@dataclass
class Metadata:
    """etcdserverpb.Metadata: the WAL's metadata record (this member and its cluster)."""
    node_id: int = 0
    cluster_id: int = 0

    def marshal(self) -> bytes:
        return f_varint(1, self.node_id) + f_varint(2, self.cluster_id)

    @classmethod
    def unmarshal(cls, b: bytes) -> "Metadata":
        m = cls()
        for num, _w, v in iter_fields(b):
            if num == 1:
                m.node_id = v
            elif num == 2:
                m.cluster_id = v
        return m
