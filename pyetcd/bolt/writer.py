"""Write a bbolt file (go.etcd.io/bbolt 1.3.6 layout, file version 2) from sorted buckets, streaming.

Layout of a written file:
  page 0, 1   meta pages (identical but for their txid: 0 and 1, so page 1 is current and
              bbolt's next commit, txid 2, goes to page 0 as it would after two commits)
  page 2      the freelist, empty (every page below the high-water mark is in use)
  page 3...   each bucket's B+tree, bucket by bucket, leaves first then each branch level
              bottom-up; then the root bucket's tree (bucket name -> bucket header).
A bucket whose pairs fit in one leaf of at most page_size/4 bytes is written inline in its
bucket header value (root pgid 0 followed by the leaf page), as bbolt does; every other bucket
gets its own root page. Nodes are cut as bbolt's splitIndex cuts them: a node takes entries
until the next one would take it past page_size * fill_percent, with at least two per node.
A node bigger than a page spills into overflow pages (header.overflow = extra pages).

Only the current node's entries and the (key, pgid) lists that build the branch levels are
held in memory; values stream from the caller's iterators straight to the file."""
from __future__ import annotations

import os
import struct
from functools import lru_cache

from pyetcd.bolt.format import (BRANCH, BUCKET_LEAF, ELEM, FREELIST, LEAF,
                                MAX_KEY_SIZE, MAX_VALUE_SIZE, PAGE_HDR, PAGE_HEADER, pack_meta)

MIN_KEYS_PER_PAGE = 2
_FIRST_DATA_PGID = 3


@lru_cache(maxsize=512)
def _elems_struct(n: int) -> struct.Struct:
    return struct.Struct("<" + "IIII" * n)


@lru_cache(maxsize=512)
def _branch_struct(n: int) -> struct.Struct:
    return struct.Struct("<" + "IIQ" * n)


def leaf_body(entries) -> bytes:
    """Element array + data of a leaf node (without the page header). entries: (k, v, flags)."""
    n = len(entries)
    flat = []
    data_off = n * ELEM  # from element 0's address to the start of the data area
    for i, (k, v, fl) in enumerate(entries):
        flat += (fl, data_off - i * ELEM, len(k), len(v))
        data_off += len(k) + len(v)
    parts = [_elems_struct(n).pack(*flat)]
    for k, v, _fl in entries:
        parts.append(k)
        parts.append(v)
    return b"".join(parts)


def branch_body(entries) -> bytes:
    """Element array + keys of a branch node. entries: (first key of child, child pgid)."""
    n = len(entries)
    flat = []
    data_off = n * ELEM
    for i, (k, pgid) in enumerate(entries):
        flat += (data_off - i * ELEM, len(k), pgid)
        data_off += len(k)
    return b"".join([_branch_struct(n).pack(*flat), *(k for k, _ in entries)])


class _Pages:
    """Appends nodes to the file from page 3 on, one or more whole pages each."""

    def __init__(self, f, page_size: int):
        self.f = f
        self.page_size = page_size
        self.next_pgid = _FIRST_DATA_PGID
        f.seek(_FIRST_DATA_PGID * page_size)

    def write_node(self, flags: int, count: int, body: bytes) -> int:
        size = PAGE_HDR + len(body)
        npages = -(-size // self.page_size)
        pgid = self.next_pgid
        self.next_pgid += npages
        self.f.write(PAGE_HEADER.pack(pgid, flags, count, npages - 1))
        self.f.write(body)
        pad = npages * self.page_size - size
        if pad:
            self.f.write(bytes(pad))
        return pgid


def _cut(entries_iter, threshold: int, elsize):
    """Group entries into nodes the way bbolt's splitIndex does: a node takes entries while
    its size stays within threshold, and at least MIN_KEYS_PER_PAGE of them."""
    node, size = [], PAGE_HDR
    for e in entries_iter:
        es = elsize(e)
        if len(node) >= MIN_KEYS_PER_PAGE and (size + es > threshold or len(node) >= 0xFFFF):
            yield node
            node, size = [], PAGE_HDR
        node.append(e)
        size += es
    if node:
        yield node


def _leaf_elsize(e):
    return ELEM + len(e[0]) + len(e[1])


def _branch_elsize(e):
    return ELEM + len(e[0])


def _write_tree(pages: _Pages, entries, threshold: int) -> int:
    """Write a B+tree of leaf entries (k, v, flags); return its root pgid."""
    level = []  # (first key, pgid) of each node of the level below
    for node in _cut(entries, threshold, _leaf_elsize):
        level.append((node[0][0], pages.write_node(LEAF, len(node), leaf_body(node))))
    if not level:
        return pages.write_node(LEAF, 0, b"")
    while len(level) > 1:
        level = [(node[0][0], pages.write_node(BRANCH, len(node), branch_body(node)))
                 for node in _cut(level, threshold, _branch_elsize)]
    return level[0][1]


def _checked(items, what: str):
    """(k, v, 0) of items, checking bbolt's limits and strictly ascending key order."""
    prev = None
    for k, v in items:
        if not isinstance(k, (bytes, bytearray)) or not isinstance(v, (bytes, bytearray)):
            raise TypeError(f"{what}: keys and values must be bytes")
        if not k:
            raise ValueError(f"{what}: empty key")
        if len(k) > MAX_KEY_SIZE:
            raise ValueError(f"{what}: key of {len(k)} bytes exceeds bbolt's {MAX_KEY_SIZE}")
        if len(v) > MAX_VALUE_SIZE:
            raise ValueError(f"{what}: value of {len(v)} bytes exceeds bbolt's maximum")
        if prev is not None and k <= prev:
            raise ValueError(f"{what}: keys not in strictly ascending order ({prev!r} then {k!r})")
        prev = bytes(k)
        yield prev, bytes(v), 0


def _bucket_value(pages: _Pages, items, name: bytes, threshold: int) -> bytes:
    """Write one bucket; return its header value (inline page included if it is inline)."""
    inline_max = pages.page_size // 4  # bbolt's maxInlineBucketSize
    it = _checked(items, f"bucket {name!r}")
    head, size = [], PAGE_HDR
    for e in it:
        head.append(e)
        size += _leaf_elsize(e)
        if size > inline_max:
            break
    else:  # every pair fits in one small leaf: inline, as bbolt writes small buckets
        body = leaf_body(head)
        return (struct.pack("<QQ", 0, 0) + PAGE_HEADER.pack(0, LEAF, len(head), 0) + body)

    def all_entries():
        yield from head
        yield from it
    root = _write_tree(pages, all_entries(), threshold)
    return struct.pack("<QQ", root, 0)


def write_file(path, buckets, *, page_size: int = 4096, fill_percent: float = 0.5) -> int:
    """Write a bbolt file at path from buckets, fsync it, and return its size in bytes.

    buckets: iterable of (name, items) in strictly ascending byte order of name; items: iterable
    of (key, value) in strictly ascending key order (ValueError otherwise). Top-level buckets
    only. fill_percent is bbolt's Bucket.FillPercent, clamped to [0.1, 1.0] as bbolt does."""
    if page_size < 1024 or page_size & (page_size - 1) or page_size > 1 << 16:
        raise ValueError(f"page size {page_size} is not a power of two in [1024, 65536]")
    fill_percent = min(max(fill_percent, 0.1), 1.0)
    threshold = int(page_size * fill_percent)
    with open(path, "wb") as f:
        pages = _Pages(f, page_size)
        root_entries = []  # (name, bucket header value, BUCKET_LEAF); values are small
        prev = None
        for name, items in buckets:
            if not isinstance(name, (bytes, bytearray)):
                raise TypeError("bucket names must be bytes")
            name = bytes(name)
            if not name:
                raise ValueError("empty bucket name")
            if len(name) > MAX_KEY_SIZE:
                raise ValueError(f"bucket name of {len(name)} bytes exceeds {MAX_KEY_SIZE}")
            if prev is not None and name <= prev:
                raise ValueError(f"bucket names not in strictly ascending order "
                                 f"({prev!r} then {name!r})")
            prev = name
            root_entries.append((name, _bucket_value(pages, items, name, threshold),
                                 BUCKET_LEAF))
        root = _write_tree(pages, iter(root_entries), threshold)
        hwm = pages.next_pgid
        f.seek(0)
        f.write(pack_meta(0, page_size, root, 2, hwm, 0))
        f.write(pack_meta(1, page_size, root, 2, hwm, 1))
        freelist = bytearray(page_size)
        PAGE_HEADER.pack_into(freelist, 0, 2, FREELIST, 0, 0)
        f.write(freelist)
        f.flush()
        os.fsync(f.fileno())
    return hwm * page_size
