# cython: language_level=3
"""Native twins of the Raft log hot paths (pure-Python references in pyetcd/raft/types.py
and pyetcd/raft/log.py):

- Entry: a log entry with C fields; its raftpb size, size limiting (max message size), and
  the raftpb wire encoding (Type=1 varint, Term=2 varint, Index=3 varint, Data=4 bytes);
- Unstable: the not-yet-persisted tail of the log (append/truncate, slice, term lookup).
  Invariant: entries[i].index == offset + i; with a snapshot, offset == snapshot index + 1.
"""
from libc.stdint cimport uint64_t, uint8_t
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from raft_codec cimport varint_len, put_varint, get_varint


cdef class Entry:
    cdef public uint64_t term
    cdef public uint64_t index
    cdef public int type
    cdef public bytes data

    def __init__(self, uint64_t term=0, uint64_t index=0, int type=0, bytes data=b""):
        self.term = term
        self.index = index
        self.type = type
        self.data = data

    def __eq__(self, other):
        if not isinstance(other, Entry):
            return (self.term == other.term and self.index == other.index
                    and self.type == other.type and self.data == other.data)
        cdef Entry o = <Entry>other
        return (self.term == o.term and self.index == o.index and self.type == o.type
                and self.data == o.data)

    def __reduce__(self):
        return (Entry, (self.term, self.index, self.type, self.data))

    def __repr__(self):
        return "Entry(term=%d, index=%d, type=%d, data=%r)" % (
            self.term, self.index, self.type, self.data)


cdef Py_ssize_t c_entry_size(Entry e) noexcept:
    # proto3 encoding: zero-valued fields are omitted (as the protobuf library does).
    cdef Py_ssize_t n = 0
    cdef Py_ssize_t ln = PyBytes_GET_SIZE(e.data)
    if e.type:
        n += 1 + varint_len(<uint64_t>e.type)
    if e.term:
        n += 1 + varint_len(e.term)
    if e.index:
        n += 1 + varint_len(e.index)
    if ln:
        n += 1 + varint_len(<uint64_t>ln) + ln
    return n


def entry_size(Entry e):
    return c_entry_size(e)


def limit_size(list ents, Py_ssize_t max_size):
    """Longest prefix of ents within max_size bytes (always at least one entry)."""
    cdef Py_ssize_t ln = len(ents)
    if ln == 0:
        return ents
    cdef Py_ssize_t size = c_entry_size(<Entry>ents[0])
    cdef Py_ssize_t n = 1
    while n < ln:
        size += c_entry_size(<Entry>ents[n])
        if size > max_size:
            break
        n += 1
    return ents[:n] if n < ln else ents


def encode_entry(Entry e):
    """raftpb.Entry wire bytes, identical to the protobuf library's serialization."""
    cdef Py_ssize_t ln = PyBytes_GET_SIZE(e.data)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, c_entry_size(e))
    cdef uint8_t* p = <uint8_t*>PyBytes_AS_STRING(out)
    cdef Py_ssize_t i = 0
    if e.type:
        p[i] = 0x08
        i += 1
        i += put_varint(p + i, <uint64_t>e.type)
    if e.term:
        p[i] = 0x10
        i += 1
        i += put_varint(p + i, e.term)
    if e.index:
        p[i] = 0x18
        i += 1
        i += put_varint(p + i, e.index)
    if ln:
        p[i] = 0x22
        i += 1
        i += put_varint(p + i, <uint64_t>ln)
        memcpy(p + i, PyBytes_AS_STRING(e.data), ln)
    return out


def decode_entry(bytes buf):
    """Parse raftpb.Entry bytes. Unknown varint/bytes fields are skipped, as protobuf does."""
    cdef const uint8_t* p = <const uint8_t*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
    cdef Py_ssize_t pos = 0
    cdef uint64_t key, ln
    cdef Entry e = Entry.__new__(Entry)
    e.data = b""
    while pos < n:
        key = get_varint(p, n, &pos)
        wt = key & 7
        field = key >> 3
        if wt == 0:
            v = get_varint(p, n, &pos)
            if field == 1:
                e.type = <int>v
            elif field == 2:
                e.term = v
            elif field == 3:
                e.index = v
        elif wt == 2:
            ln = get_varint(p, n, &pos)
            if pos + <Py_ssize_t>ln > n:
                raise ValueError("truncated bytes field in Entry")
            if field == 4:
                e.data = buf[pos:pos + <Py_ssize_t>ln]
            pos += <Py_ssize_t>ln
        elif wt == 5:
            pos += 4
        elif wt == 1:
            pos += 8
        else:
            raise ValueError("unsupported wire type %d in Entry" % wt)
    if pos > n:
        raise ValueError("truncated Entry")
    return e


cdef class Unstable:
    cdef public object snapshot
    cdef public list entries
    cdef public uint64_t offset

    def __init__(self, uint64_t offset=0):
        self.snapshot = None
        self.entries = []
        self.offset = offset

    cpdef object maybe_first_index(self):
        if self.snapshot is not None:
            return self.snapshot.metadata.index + 1
        return None

    cpdef object maybe_last_index(self):
        cdef Py_ssize_t n = len(self.entries)
        if n:
            return self.offset + <uint64_t>n - 1
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return None

    cpdef object maybe_term(self, uint64_t i):
        cdef Py_ssize_t j
        if i < self.offset:
            s = self.snapshot
            if s is not None and s.metadata.index == i:
                return s.metadata.term
            return None
        j = <Py_ssize_t>(i - self.offset)
        if j < len(self.entries):
            return (<Entry>self.entries[j]).term
        return None

    cpdef stable_to(self, uint64_t i, uint64_t t):
        gt = self.maybe_term(i)
        if gt is None:
            return
        if gt == t and i >= self.offset:
            del self.entries[:i + 1 - self.offset]
            self.offset = i + 1

    cpdef stable_snap_to(self, uint64_t i):
        if self.snapshot is not None and self.snapshot.metadata.index == i:
            self.snapshot = None

    cpdef restore(self, snap):
        self.offset = snap.metadata.index + 1
        self.entries = []
        self.snapshot = snap

    cpdef truncate_and_append(self, list ents):
        cdef uint64_t after = (<Entry>ents[0]).index
        cdef Py_ssize_t n = len(self.entries)
        if after == self.offset + <uint64_t>n:
            self.entries.extend(ents)
        elif after <= self.offset:
            self.offset = after
            self.entries = list(ents)
        else:
            del self.entries[after - self.offset:]
            self.entries.extend(ents)

    cpdef list slice(self, uint64_t lo, uint64_t hi):
        return self.entries[lo - self.offset:hi - self.offset]
