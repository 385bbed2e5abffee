# cython: language_level=3
"""Native twin of pyetcd.raft.quorum's majority arithmetic: the commit index agreed by a
majority of match indexes (sort on a C array), and a majority vote outcome."""
from libc.stdint cimport uint64_t

DEF SMALL = 16

cdef uint64_t INF = 0xFFFFFFFFFFFFFFFF


cdef inline void insertion_sort(uint64_t* a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef uint64_t x
    for i in range(1, n):
        x = a[i]
        j = i - 1
        while j >= 0 and a[j] > x:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = x


def majority_committed(list matches):
    """Largest index acknowledged by a majority of matches (INF for an empty config)."""
    cdef Py_ssize_t n = len(matches)
    cdef uint64_t stack[SMALL]
    cdef uint64_t* a = stack
    cdef Py_ssize_t i
    if n == 0:
        return INF
    if n > SMALL:
        # Clusters this large are unusual (etcd recommends 3-7 voters): sort in Python.
        srt = sorted(matches)
        return srt[n - (n // 2 + 1)]
    for i in range(n):
        a[i] = <uint64_t>matches[i]
    insertion_sort(a, n)
    return a[n - (n // 2 + 1)]


def majority_vote(Py_ssize_t n, Py_ssize_t yes, Py_ssize_t no):
    """1 = pending, 2 = lost, 3 = won (pyetcd.raft.quorum.VOTE_*)."""
    if n == 0:
        return 3
    cdef Py_ssize_t q = n // 2 + 1
    if yes >= q:
        return 3
    if n - no >= q:
        return 1
    return 2
