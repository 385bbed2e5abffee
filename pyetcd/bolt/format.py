"""bbolt's on-disk format (go.etcd.io/bbolt 1.3.x, file version 2): constants and the meta page.

Every page starts with a 16-byte header: id u64, flags u16, count u16, overflow u32 (the
number of extra pages a node spills into). Integers are little-endian (amd64 layout).
Page 0 and 1 are meta pages; bbolt uses the valid one with the higher txid."""
from __future__ import annotations

import struct

BRANCH, LEAF, META, FREELIST = 0x01, 0x02, 0x04, 0x10
BUCKET_LEAF = 0x01  # leaf element flag: the value is a bucket header
MAGIC = 0xED0CDAED
VERSION = 2
PAGE_HDR = 16
ELEM = 16  # leaf element: flags, pos, ksize, vsize (u32); branch element: pos, ksize (u32), pgid (u64)
BUCKET_HDR = 16  # bucket value: root pgid u64, sequence u64; root 0 = inline page follows
NO_FREELIST = 0xFFFFFFFFFFFFFFFF  # meta.freelist when the freelist is not synced to disk
MAX_KEY_SIZE = 32768
MAX_VALUE_SIZE = (1 << 31) - 2

PAGE_HEADER = struct.Struct("<QHHI")
LEAF_ELEM = struct.Struct("<IIII")
BRANCH_ELEM = struct.Struct("<IIQ")
# magic, version, page size, flags, root pgid, sequence, freelist, high-water pgid, txid
META_BODY = struct.Struct("<IIIIQQQQQ")
META_SIZE = META_BODY.size + 8  # + checksum


def fnv64a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def page_type(flags: int) -> str:
    """bbolt's page.typ() names, used in its check messages."""
    if flags & BRANCH:
        return "branch"
    if flags & LEAF:
        return "leaf"
    if flags & META:
        return "meta"
    if flags & FREELIST:
        return "freelist"
    return f"unknown<{flags:02x}>"


def pack_meta(pgid: int, page_size: int, root: int, freelist: int, hwm: int, txid: int) -> bytes:
    """A whole meta page (page_size bytes) with its checksum."""
    body = META_BODY.pack(MAGIC, VERSION, page_size, 0, root, 0, freelist, hwm, txid)
    page = bytearray(page_size)
    PAGE_HEADER.pack_into(page, 0, pgid, META, 0, 0)
    page[PAGE_HDR:PAGE_HDR + len(body)] = body
    struct.pack_into("<Q", page, PAGE_HDR + len(body), fnv64a(body))
    return bytes(page)
