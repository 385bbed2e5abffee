"""Read a bbolt file: its top-level buckets and their key/value pairs in key order.

Handles what real bbolt writes (inline buckets, branch pages, overflow pages, both meta pages,
an unsynced freelist) as well as pyetcd.bolt.writer's files. Read-only; never locks the file."""
from __future__ import annotations

import mmap
import os
import struct
from bisect import bisect_right
from dataclasses import dataclass

from pyetcd.bolt.format import (BRANCH, BUCKET_HDR, BUCKET_LEAF, ELEM, LEAF, MAGIC, META_BODY,
                                PAGE_HDR, PAGE_HEADER, VERSION, fnv64a)


class BoltError(Exception):
    pass


@dataclass(frozen=True)
class Meta:
    page_size: int
    flags: int
    root: int  # pgid of the root bucket's root page
    sequence: int
    freelist: int  # pgid, or NO_FREELIST
    hwm: int  # high-water mark: pages [0, hwm) are in use or free
    txid: int


def parse_meta(data, off: int):
    """The meta page at data[off:] as a Meta, or bbolt's validation error text."""
    body = off + PAGE_HDR
    if len(data) < body + META_BODY.size + 8:
        return "invalid database"
    magic, version, page_size, flags, root, seq, freelist, hwm, txid = \
        META_BODY.unpack_from(data, body)
    if magic != MAGIC:
        return "invalid database"
    if version != VERSION:
        return "version mismatch"
    checksum = struct.unpack_from("<Q", data, body + META_BODY.size)[0]
    if fnv64a(bytes(data[body:body + META_BODY.size])) != checksum:
        return "checksum error"
    return Meta(page_size, flags, root, seq, freelist, hwm, txid)


class DB:
    """A bbolt file opened read-only. `data` is bytes, or an mmap of the file (see open_file)."""

    def __init__(self, data, path: str | None = None):
        self.data = data
        self.path = path
        # bbolt: the page size comes from a valid first meta page, else the OS page size;
        # then both metas are checked and the valid one with the higher txid is used.
        if len(data) < 0x1000:  # bbolt cannot read its first 4 KiB: ErrInvalid
            raise BoltError("invalid database")
        m0 = parse_meta(data, 0)
        page_size = m0.page_size if isinstance(m0, Meta) else 4096
        if len(data) < 2 * page_size:
            raise BoltError("file size too small")
        m1 = parse_meta(data, page_size)
        valid = [m for m in (m0, m1) if isinstance(m, Meta)]
        if not valid:
            raise BoltError(m0)
        self.metas = (m0, m1)
        self.meta = max(valid, key=lambda m: m.txid)
        self.page_size = self.meta.page_size
        self.root = self.meta.root
        self.max_pgid = self.meta.hwm
        if self.max_pgid * self.page_size > len(data):
            raise BoltError(f"file size {len(data)} is smaller than the high-water mark "
                            f"({self.max_pgid} pages of {self.page_size} bytes)")
        self._buckets: dict[bytes, bytes] | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        if isinstance(self.data, mmap.mmap):
            self.data.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def size(self) -> int:
        """The size bbolt's tx.Size() reports: high-water mark times page size."""
        return self.max_pgid * self.page_size

    # -- pages ----------------------------------------------------------------------------
    def page_offset(self, pgid: int) -> int:
        if pgid >= self.max_pgid:
            raise BoltError(f"page {pgid} is beyond the high-water mark {self.max_pgid}")
        return pgid * self.page_size

    def page_header(self, pgid: int) -> tuple[int, int, int, int]:
        """(id, flags, count, overflow) of page pgid."""
        return PAGE_HEADER.unpack_from(self.data, self.page_offset(pgid))

    def _elements(self, buf, off: int, count: int):
        return struct.iter_unpack("<IIII", buf[off + PAGE_HDR:off + PAGE_HDR + count * ELEM])

    def _walk(self, buf, off: int, depth: int = 0):
        """(key, value, flags) of the subtree rooted at the page at buf[off:], in key order."""
        if depth > 64:
            raise BoltError("tree too deep (page cycle?)")
        _pid, flags, count, _ovf = PAGE_HEADER.unpack_from(buf, off)
        base = off + PAGE_HDR
        if flags & LEAF:
            for i, (eflags, pos, ksize, vsize) in enumerate(self._elements(buf, off, count)):
                kstart = base + i * ELEM + pos
                yield (bytes(buf[kstart:kstart + ksize]),
                       bytes(buf[kstart + ksize:kstart + ksize + vsize]), eflags)
        elif flags & BRANCH:
            for _pos, _ksize, child in struct.iter_unpack(
                    "<IIQ", buf[base:base + count * ELEM]):
                yield from self._walk(self.data, self.page_offset(child), depth + 1)
        else:
            raise BoltError(f"unexpected page flags {flags:#x}")

    def _bucket_root(self, value: bytes):
        """(buffer, offset) of a bucket's root page, from its bucket header value."""
        if len(value) < BUCKET_HDR:
            raise BoltError("bucket header too short")
        root = struct.unpack_from("<Q", value, 0)[0]
        if root == 0:  # inline bucket: its page follows the 16-byte header
            return value, BUCKET_HDR
        return self.data, self.page_offset(root)

    # -- buckets --------------------------------------------------------------------------
    def buckets(self):
        """(name, bucket header value) of each top-level bucket, in name order."""
        for k, v, flags in self._walk(self.data, self.page_offset(self.root)):
            if flags & BUCKET_LEAF:
                yield k, v

    def bucket_items(self, value: bytes):
        """(key, value, flags) of the bucket with this header value (nested buckets included)."""
        buf, off = self._bucket_root(value)
        yield from self._walk(buf, off)

    def _bucket_map(self) -> dict[bytes, bytes]:
        if self._buckets is None:
            self._buckets = dict(self.buckets())
        return self._buckets

    def bucket_names(self) -> list[bytes]:
        return list(self._bucket_map())

    def _header(self, name: bytes) -> bytes:
        try:
            return self._bucket_map()[name]
        except KeyError:
            raise KeyError(name) from None

    def items(self, name: bytes):
        """(key, value) of bucket `name` in key order. Nested buckets are not supported
        (etcd uses none) and raise BoltError."""
        for k, v, flags in self.bucket_items(self._header(name)):
            if flags & BUCKET_LEAF:
                raise BoltError(f"bucket {name!r} holds a nested bucket {k!r}")
            yield k, v

    def get(self, name: bytes, key: bytes):
        """The value of key in bucket name, or None (KeyError if the bucket does not exist)."""
        buf, off = self._bucket_root(self._header(name))
        for _ in range(64):
            _pid, flags, count, _ovf = PAGE_HEADER.unpack_from(buf, off)
            base = off + PAGE_HDR
            if flags & LEAF:
                for i, (eflags, pos, ksize, vsize) in enumerate(self._elements(buf, off, count)):
                    kstart = base + i * ELEM + pos
                    k = bytes(buf[kstart:kstart + ksize])
                    if k == key:
                        if eflags & BUCKET_LEAF:
                            return None
                        return bytes(buf[kstart + ksize:kstart + ksize + vsize])
                    if k > key:
                        return None
                return None
            if not flags & BRANCH:
                raise BoltError(f"unexpected page flags {flags:#x}")
            keys, children = [], []
            for i, (pos, ksize, child) in enumerate(struct.iter_unpack(
                    "<IIQ", buf[base:base + count * ELEM])):
                kstart = base + i * ELEM + pos
                keys.append(bytes(buf[kstart:kstart + ksize]))
                children.append(child)
            if not children:
                return None
            i = max(bisect_right(keys, key) - 1, 0)
            buf, off = self.data, self.page_offset(children[i])
        raise BoltError("tree too deep (page cycle?)")


def open_file(path: str) -> DB:
    """Open a bbolt file read-only (memory-mapped; close() or use as a context manager)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            data = b""
        else:
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        return DB(data, path)
    except BaseException:
        if isinstance(data, mmap.mmap):
            data.close()
        raise


def status(path: str):
    """etcdutl's snapshot status: (hash, revision, total keys, total size), after etcdutl's
    integrity check (tx.Check). The hash is CRC-32C over every bucket name, then each key and
    value in it, in bbolt's iteration order."""
    import crc32c
    if os.path.getsize(path) == 0:  # bbolt initialises an empty file, which read-only fails
        raise BoltError(f"write {path}: bad file descriptor")
    from pyetcd.bolt.check import check
    with open_file(path) as db:
        errors = check(db)
        if errors:  # etcdutl runs tx.Check() first
            raise BoltError(f"snapshot file integrity check failed. {len(errors)} errors found.\n"
                            + "\n".join(errors))
        h = 0
        revision = total = 0
        for name, bval in db.buckets():
            h = crc32c.crc32c(name, h)
            is_key = name == b"key"
            for k, v, _flags in db.bucket_items(bval):
                h = crc32c.crc32c(v, crc32c.crc32c(k, h))
                if is_key and len(k) >= 8:
                    revision = struct.unpack_from(">q", k, 0)[0]
                total += 1
        return h, revision, total, db.size
