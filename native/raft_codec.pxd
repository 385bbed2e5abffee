# Inline C helpers shared by the raft_* native modules: protobuf varint sizing and coding.
from libc.stdint cimport uint64_t, uint8_t


cdef inline Py_ssize_t varint_len(uint64_t v) noexcept nogil:
    cdef Py_ssize_t n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef inline Py_ssize_t put_varint(uint8_t* p, uint64_t v) noexcept nogil:
    cdef Py_ssize_t i = 0
    while v >= 0x80:
        p[i] = <uint8_t>(v & 0x7F) | 0x80
        v >>= 7
        i += 1
    p[i] = <uint8_t>v
    return i + 1


cdef inline uint64_t get_varint(const uint8_t* p, Py_ssize_t n, Py_ssize_t* pos) except? 0:
    cdef uint64_t v = 0
    cdef int shift = 0
    cdef uint8_t b
    while True:
        if pos[0] >= n or shift > 63:
            raise ValueError("truncated or invalid varint")
        b = p[pos[0]]
        pos[0] += 1
        v |= (<uint64_t>(b & 0x7F)) << shift
        if b < 0x80:
            return v
        shift += 7
