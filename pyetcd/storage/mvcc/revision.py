"""Revisions and their 17-byte backend keys (etcd server/mvcc/revision.go).

A revision is (main, sub): main counts write transactions, sub the change within one. In memory
we carry it as one int, ``main << 24 | sub``, so revisions compare and sort as ints and fit a
signed int64 in the native index: main < 2**39 (at 100k txns/s, 170 years), sub < 2**24 changes
in one txn (the store refuses more). In the backend's "key" bucket the key is
8-byte big-endian main + b"_" + 8-byte big-endian sub, with b"t" appended for a tombstone, so
byte order equals revision order.
"""
from __future__ import annotations

import struct

SUB_BITS = 24
SUB_MASK = (1 << SUB_BITS) - 1
REV_BYTES_LEN = 17
MARKED_REV_BYTES_LEN = 18
MARK_TOMBSTONE = b"t"

_REV = struct.Struct(">Q1sQ")
_MAIN = struct.Struct(">Q")


def rev(main: int, sub: int = 0) -> int:
    """The in-memory encoding of revision (main, sub)."""
    return (main << SUB_BITS) | sub


def rev_main(r: int) -> int:
    return r >> SUB_BITS


def rev_sub(r: int) -> int:
    return r & SUB_MASK


def py_rev_to_bytes(r: int) -> bytes:
    return _REV.pack(r >> SUB_BITS, b"_", r & SUB_MASK)


def py_tombstone_bytes(r: int) -> bytes:
    return _REV.pack(r >> SUB_BITS, b"_", r & SUB_MASK) + MARK_TOMBSTONE


def py_bytes_to_rev(b: bytes) -> int:
    main, _, sub = _REV.unpack_from(b)
    return (main << SUB_BITS) | sub


def main_to_bytes(main: int) -> bytes:
    """8-byte big-endian main revision: the lower bound of every key with that main revision."""
    return _MAIN.pack(main)


def main_rev_bytes(main: int) -> bytes:
    """The 17-byte key of revision (main, 0), as etcd stores in meta for compact revisions."""
    return _REV.pack(main, b"_", 0)


def is_tombstone(b: bytes) -> bool:
    return len(b) == MARKED_REV_BYTES_LEN and b[17] == 0x74  # 't'


try:  # the compiled versions, when built (native/mvcc_index.pyx)
    from pyetcd._native.mvcc_index import rev_to_bytes, tombstone_bytes, bytes_to_rev  # noqa: F401
except ImportError:  # pragma: no cover - plain Python fallback
    rev_to_bytes = py_rev_to_bytes
    tombstone_bytes = py_tombstone_bytes
    bytes_to_rev = py_bytes_to_rev
