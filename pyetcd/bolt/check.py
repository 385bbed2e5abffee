"""Integrity check of a bbolt file, after bbolt 1.3.6's tx.Check(): every page below the high-water
mark is reachable exactly once (metas, freelist, bucket trees) or free, and reachable pages are
branch or leaf pages within bounds. Messages are bbolt 1.3.6's, in its order. With key_order=True
it also checks that keys ascend within and across pages (later bbolt releases check that too;
those messages are ours)."""
from __future__ import annotations

import struct

from pyetcd.bolt.format import (BRANCH, BUCKET_HDR, BUCKET_LEAF, ELEM, FREELIST, LEAF,
                                NO_FREELIST, PAGE_HDR, PAGE_HEADER, page_type)
from pyetcd.bolt.reader import DB


def _freelist_ids(db: DB, errors: list[str]) -> list[int]:
    pgid = db.meta.freelist
    if pgid >= db.max_pgid:
        errors.append(f"freelist page {pgid}: out of bounds: {db.max_pgid}")
        return []
    off = pgid * db.page_size
    _id, flags, count, _ovf = PAGE_HEADER.unpack_from(db.data, off)
    if not flags & FREELIST:
        errors.append(f"page {pgid}: invalid freelist page type: {page_type(flags)}")
        return []
    start = off + PAGE_HDR
    if count == 0xFFFF:  # the real count is the first element
        count = struct.unpack_from("<Q", db.data, start)[0]
        start += 8
    return list(struct.unpack_from(f"<{count}Q", db.data, start))


def check(db: DB, key_order: bool = False) -> list[str]:
    """Problems found in db, as bbolt's Check reports them; an empty list means none."""
    return _scan(db, key_order)[0]


def free_page_count(db: DB) -> int:
    """Free pages as bbolt counts them when it opens db (Stats().FreePageN): the synced
    freelist's ids, or, without one, every page in [2, high-water mark) no bucket reaches."""
    _errors, reachable, freed = _scan(db)
    if db.meta.freelist != NO_FREELIST:
        return len(freed)
    return sum(1 for i in range(2, db.max_pgid) if i not in reachable)


def _scan(db: DB, key_order: bool = False) -> tuple[list[str], set[int], set[int]]:
    """(errors, reachable pages, freed pages)."""
    errors: list[str] = []
    hwm, ps, data = db.max_pgid, db.page_size, db.data
    freed: set[int] = set()
    synced_freelist = db.meta.freelist != NO_FREELIST
    reachable: set[int] = {0, 1}
    if synced_freelist:
        for pid in _freelist_ids(db, errors):
            if pid in freed:
                errors.append(f"page {pid}: already freed")
            freed.add(pid)
        if db.meta.freelist < hwm:
            ovf = PAGE_HEADER.unpack_from(data, db.meta.freelist * ps)[3]
            reachable.update(range(db.meta.freelist, db.meta.freelist + ovf + 1))

    def mark(pgid: int) -> tuple | None:
        """Account for page pgid (and its overflow); its header, or None if unusable."""
        if pgid >= hwm:
            errors.append(f"page {pgid}: out of bounds: {hwm}")
            return None
        hdr = PAGE_HEADER.unpack_from(data, pgid * ps)
        if hdr[0] != pgid:
            errors.append(f"page {pgid}: header holds page id {hdr[0]}")
        for i in range(hdr[3] + 1):
            if pgid + i in reachable:
                errors.append(f"page {pgid + i}: multiple references")
            reachable.add(pgid + i)
        if pgid + hdr[3] >= hwm:
            errors.append(f"page {pgid}: overflow {hdr[3]} runs past the high-water mark {hwm}")
        if pgid in freed:  # reported, and walked on as bbolt does
            errors.append(f"page {pgid}: reachable freed")
        elif not hdr[1] & (BRANCH | LEAF):
            errors.append(f"page {pgid}: invalid type: {page_type(hdr[1])}")
        return hdr if hdr[1] & (BRANCH | LEAF) else None

    def walk_bucket(buf, off: int, root_pgid: int | None, name: bytes):
        """Check one bucket's tree (root page at buf[off:]); recurse into nested buckets."""
        # stack of (buf, off, pgid or None for inline, lower bound, upper bound, page stack)
        todo = [(buf, off, root_pgid, None, None, [])]
        while todo:
            buf, off, pgid, lo, hi, stack = todo.pop()
            if pgid is not None:
                stack = stack + [pgid]
                hdr = mark(pgid)
                if hdr is None:
                    continue
                buf, off = data, pgid * ps
            if len(stack) > 64:
                errors.append(f"bucket {name!r}: tree deeper than 64 pages (cycle?)")
                continue
            _id, flags, count, _ovf = PAGE_HEADER.unpack_from(buf, off)
            base = off + PAGE_HDR
            elems = list(struct.iter_unpack("<IIII", buf[base:base + count * ELEM]))
            keys = []
            for i, (a, b, c, _d) in enumerate(elems):
                pos, ksize = (b, c) if flags & LEAF else (a, b)
                kstart = base + i * ELEM + pos
                keys.append(bytes(buf[kstart:kstart + ksize]))
            where = f"page {pgid}" if pgid is not None else f"inline bucket {name!r}"
            for i, k in enumerate(keys if key_order else ()):
                if i and keys[i - 1] >= k:
                    errors.append(f"{where}: key[{i}]={k.hex()} not above the previous key "
                                  f"{keys[i - 1].hex()}")
                if lo is not None and k < lo:
                    errors.append(f"{where}: key[{i}]={k.hex()} below its branch key {lo.hex()}")
                if hi is not None and k >= hi:
                    errors.append(f"{where}: key[{i}]={k.hex()} not below the next branch key "
                                  f"{hi.hex()}")
            if flags & BRANCH:
                for i in reversed(range(len(elems))):
                    child = struct.unpack_from("<Q", buf, base + i * ELEM + 8)[0]
                    nxt = keys[i + 1] if i + 1 < len(keys) else hi
                    todo.append((None, 0, child, keys[i], nxt, stack))
                continue
            for i, (eflags, pos, ksize, vsize) in enumerate(elems):
                if eflags & BUCKET_LEAF:
                    vstart = base + i * ELEM + pos + ksize
                    value = bytes(buf[vstart:vstart + vsize])
                    if len(value) < BUCKET_HDR:
                        errors.append(f"bucket {keys[i]!r}: header too short")
                        continue
                    root = struct.unpack_from("<Q", value, 0)[0]
                    if root == 0:
                        walk_bucket(value, BUCKET_HDR, None, keys[i])
                    else:
                        walk_bucket(None, 0, root, keys[i])

    walk_bucket(None, 0, db.root, b"")
    if synced_freelist:
        for i in range(hwm):
            if i not in reachable and i not in freed:
                errors.append(f"page {i}: unreachable unfreed")
    return errors, reachable, freed
