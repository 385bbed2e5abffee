# Inline C helpers shared by the mvcc_* native modules: revision layout and byte codecs.
# A revision is an int64 main << SUB_BITS | sub (pyetcd/storage/mvcc/revision.py).
from libc.stdint cimport int64_t, uint64_t, uint8_t

cdef extern from *:
    """
    #define MVCC_SUB_BITS 24
    #define MVCC_SUB_MASK 0xFFFFFFLL
    """
    int SUB_BITS "MVCC_SUB_BITS"
    int64_t SUB_MASK "MVCC_SUB_MASK"


# -- revision keys ------------------------------------------------------------------------

cdef inline void _put_be64(char* p, uint64_t v) noexcept:
    cdef int i
    for i in range(7, -1, -1):
        p[i] = <char>(v & 0xFF)
        v >>= 8


cdef inline uint64_t _get_be64(const uint8_t* p) noexcept:
    cdef uint64_t v = 0
    cdef int i
    for i in range(8):
        v = (v << 8) | p[i]
    return v


cdef inline Py_ssize_t _varint_len(uint64_t v) noexcept:
    cdef Py_ssize_t n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef inline char* _put_varint(char* p, uint64_t v) noexcept:
    while v >= 0x80:
        p[0] = <char>((v & 0x7F) | 0x80)
        v >>= 7
        p += 1
    p[0] = <char>v
    return p + 1


