"""Read-only walk of a bbolt file (etcd's backend format), enough for `snapshot status`:
buckets and their key/value pairs in key order, and the file's size as bbolt reports it."""
from __future__ import annotations

import struct

BRANCH, LEAF, META = 0x01, 0x02, 0x04
BUCKET_LEAF = 0x01
MAGIC = 0xED0CDAED
_PAGE_HDR = 16


class BoltError(Exception):
    pass


def _fnv64a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class DB:
    def __init__(self, data: bytes):
        self.data = data
        # bbolt: page size from a valid first meta page, else the OS page size; then both metas
        m0 = self._meta(0)
        page_size = m0[0] if isinstance(m0, tuple) else 4096
        if len(data) < 2 * page_size:
            raise BoltError("file size too small")
        m1 = self._meta(page_size)
        valid = [m for m in (m0, m1) if isinstance(m, tuple)]
        if not valid:
            raise BoltError(m0)
        best = max(valid, key=lambda m: m[4])
        self.page_size, self.root, self.max_pgid = best[0], best[2], best[3]

    def _meta(self, off):
        """The meta page at off as a tuple, or bbolt's validation error text."""
        d = self.data
        if len(d) < off + _PAGE_HDR + 64:
            return "invalid database"
        body = off + _PAGE_HDR
        magic, version, page_size, _flags, root, _seq, _freelist, pgid, txid, checksum = \
            struct.unpack_from("<IIIIQQQQQQ", d, body)
        if magic != MAGIC:
            return "invalid database"
        if version != 2:
            return "version mismatch"
        if _fnv64a(d[body:body + 56]) != checksum:
            return "checksum error"
        return page_size, version, root, pgid, txid

    def page(self, pgid: int) -> int:
        return pgid * self.page_size

    def size(self) -> int:
        return self.max_pgid * self.page_size

    def _items(self, buf: bytes, off: int):
        """(key, value, flags) of the subtree rooted at the page at buf[off:], in key order."""
        _pid, flags, count = struct.unpack_from("<QHH", buf, off)
        base = off + _PAGE_HDR
        if flags & LEAF:
            for i in range(count):
                eoff = base + i * 16
                eflags, pos, ksize, vsize = struct.unpack_from("<IIII", buf, eoff)
                k = buf[eoff + pos:eoff + pos + ksize]
                v = buf[eoff + pos + ksize:eoff + pos + ksize + vsize]
                yield bytes(k), bytes(v), eflags
        elif flags & BRANCH:
            for i in range(count):
                eoff = base + i * 16
                _pos, _ksize, child = struct.unpack_from("<IIQ", buf, eoff)
                yield from self._items(self.data, self.page(child))
        else:
            raise BoltError(f"unexpected page flags {flags:#x}")

    def bucket_items(self, value: bytes):
        root = struct.unpack_from("<Q", value, 0)[0]
        if root == 0:  # inline bucket: its page follows the 16-byte header
            yield from self._items(value, 16)
        else:
            yield from self._items(self.data, self.page(root))

    def buckets(self):
        for k, v, flags in self._items(self.data, self.page(self.root)):
            if flags & BUCKET_LEAF:
                yield k, v


def status(path: str):
    """etcdutl's snapshot status: (hash, revision, total keys, total size)."""
    import crc32c
    with open(path, "rb") as f:
        data = f.read()
    db = DB(data)
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
    return h, revision, total, db.size()
