"""Record framing for WAL segments: encoding and the verifying scanner.

Frame (little-endian, 13-byte header, no padding):

    [u32 crc][u32 length][u8 type][u32 prev_crc][payload: length bytes]

``crc`` is CRC-32C (Castagnoli) of every byte after the crc field: length, type, prev_crc and
payload. ``prev_crc`` is the crc of the record just before this one (in this segment or, for a
segment's first record, the last record of the previous segment; 0 for the very first record).
So each record can be verified on its own -- which lets the scanner tell a torn tail (nothing
valid after the damage) from damage in the middle (valid records follow) -- and the explicit
link detects records that were reordered, spliced or dropped.

Type 0 is never written, so zero-filled space (preallocation, or a sector that never reached the
disk) never parses as a record.
"""
import re
import struct

from crc32c import crc32c

from .errors import WALCorruptError

METADATA = 1
ENTRY = 2
STATE = 3
CRC = 4
SNAPSHOT = 5
RECORD_TYPES = frozenset((METADATA, ENTRY, STATE, CRC, SNAPSHOT))
TYPE_NAMES = {METADATA: "metadata", ENTRY: "entry", STATE: "state", CRC: "crc", SNAPSHOT: "snapshot"}

HEADER = struct.Struct("<IIBI")
HEADER_SIZE = HEADER.size  # 13
BODY_HEADER = struct.Struct("<IBI")  # the part of the header the crc covers
U32 = struct.Struct("<I")
_SNAP = struct.Struct("<QQ")
MAX_RECORD = 1 << 30  # a record longer than this is damage, not data
# The writer never has more than this many bytes written but not yet fdatasync'ed, so a crash
# can tear at most the last TEAR_WINDOW bytes of the tail. Zero-sector "torn write" repair is
# only believed inside that window; further back, the records were durable and damage there is
# corruption.
TEAR_WINDOW = 8 * 1024 * 1024

# A disk writes whole sectors; a sector that never made it to the platter reads back as zeros.
SECTOR = 512
_ZERO_SECTOR = bytes(SECTOR)
_ZERO_CHUNK = bytes(1 << 16)


def append_record(buf: bytearray, rtype: int, payload: bytes, prev_crc: int) -> int:
    """Frame one record onto ``buf``; return its crc (the next record's ``prev_crc``)."""
    body = BODY_HEADER.pack(len(payload), rtype, prev_crc) + payload
    crc = crc32c(body)  # one call over a copy beats two calls with a seed
    buf += U32.pack(crc)
    buf += body
    return crc


def encode_snapshot(index: int, term: int) -> bytes:
    return _SNAP.pack(index, term)


def decode_snapshot(payload) -> tuple:
    if len(payload) != _SNAP.size:
        raise ValueError("snapshot record of %d bytes" % len(payload))
    return _SNAP.unpack(payload)


def data_end(buf) -> int:
    """Offset just past the last non-zero byte of ``buf`` (0 if it is all zeros)."""
    end = len(buf)
    step = len(_ZERO_CHUNK)
    while end > 0:
        start = max(0, end - step)
        chunk = buf[start:end]
        if chunk != _ZERO_CHUNK[: end - start]:
            return start + len(bytes(chunk).rstrip(b"\0"))
        end = start
    return 0


def _valid_at(buf, off: int, limit: int) -> bool:
    """Does a record that verifies on its own start at ``off`` and end by ``limit``?"""
    if off + HEADER_SIZE > limit:
        return False
    crc, length, rtype, _prev = HEADER.unpack_from(buf, off)
    if rtype not in RECORD_TYPES or length > limit - off - HEADER_SIZE:
        return False
    return crc32c(buf[off + 4: off + HEADER_SIZE + length]) == crc


_TYPE_BYTE = re.compile(b"[%s]" % bytes(sorted(RECORD_TYPES)))


def _find_valid_after(buf, start: int, data_limit: int) -> int:
    """Offset of the first self-verifying record starting in buf[start:data_limit], or -1.

    A record starts before the last non-zero byte (its type byte is non-zero) but may end past
    it: a snapshot marker's payload ends in zero bytes.
    """
    n = len(buf)
    pos = start + 8
    last = min(data_limit, n - HEADER_SIZE + 8)
    while pos <= last:
        # Only offsets whose type byte is a real record type can start a record.
        m = _TYPE_BYTE.search(buf, pos, last + 1)
        if m is None:
            return -1
        p = m.start()
        if _valid_at(buf, p - 8, n):
            return p - 8
        pos = p + 1
    return -1


def _has_zero_sector(buf, start: int, end: int) -> bool:
    """Does buf[start:end] contain a whole sector-aligned run of zeros?"""
    off = -(-start // SECTOR) * SECTOR
    while off + SECTOR <= end:
        if buf[off: off + SECTOR] == _ZERO_SECTOR:
            return True
        off += SECTOR
    return False


class SegmentScan:
    """Result of verifying one segment's bytes.

    ``records``: list of (type, payload bytes); ``end``: offset after the last good record;
    ``last_crc``: crc of the last good record (the chain value to continue from);
    ``torn``: non-zero bytes after ``end`` were discarded as a torn write.
    """

    __slots__ = ("records", "end", "last_crc", "torn", "reason")

    def __init__(self):
        self.records = []
        self.end = 0
        self.last_crc = 0
        self.torn = False
        self.reason = ""


def scan_segment(buf, name: str, prev_crc, *, tail: bool) -> SegmentScan:
    """Verify every record of one segment.

    ``prev_crc`` is the chain value the first record must link to (None: accept any, used for
    the first segment read). Damage is tolerated only in the ``tail`` (last) segment and only
    when nothing valid follows it -- or what follows sits behind a zero-filled sector, the mark
    of a multi-sector write that a crash tore (unsynced, so never acknowledged). Anything else
    raises WALCorruptError naming the file and offset.
    """
    view = memoryview(buf)
    n = len(buf)
    res = SegmentScan()
    records = res.records
    off = 0
    prev = prev_crc
    unpack = HEADER.unpack_from
    while off < n:
        reason = None
        if n - off < HEADER_SIZE:
            reason = "incomplete record header"
        else:
            crc, length, rtype, link = unpack(buf, off)
            end = off + HEADER_SIZE + length
            if rtype not in RECORD_TYPES:
                reason = "bad record type %d" % rtype
            elif length > MAX_RECORD or end > n:
                reason = "record length %d runs past end of file" % length
            elif crc32c(view[off + 4: end]) != crc:
                reason = "CRC mismatch in %s record" % TYPE_NAMES[rtype]
            elif prev is not None and link != prev:
                raise WALCorruptError(
                    "%s: CRC chain broken at offset %d: %s record links to %08x, expected %08x"
                    % (name, off, TYPE_NAMES[rtype], link, prev))
        if reason is not None:
            _damage(buf, name, off, reason, tail, res)
            break
        records.append((rtype, buf[off + HEADER_SIZE: end]))
        prev = crc
        off = end
    res.end = off
    if prev is not None:
        res.last_crc = prev
    return res


def _damage(buf, name: str, off: int, reason: str, tail: bool, res: SegmentScan) -> None:
    limit = data_end(buf)
    if off >= limit:
        return  # only zeros from here on: the clean end of a preallocated segment
    if not tail:
        raise WALCorruptError("%s: %s at offset %d (not the last segment)" % (name, reason, off))
    nxt = _find_valid_after(buf, off + 1, limit)
    if nxt != -1 and (limit - off > TEAR_WINDOW or not _has_zero_sector(buf, off, nxt)):
        raise WALCorruptError(
            "%s: %s at offset %d, but a valid record follows at offset %d" % (name, reason, off, nxt))
    res.torn = True
    res.reason = "%s at offset %d" % (reason, off)
