# cython: language_level=3
"""Native twin of pyetcd.raft.tracker.PyInflights: a C ring buffer of inflight MsgApp
last indexes for one follower."""
from libc.stdint cimport uint64_t
from libc.stdlib cimport malloc, free


cdef class Inflights:
    cdef public Py_ssize_t start
    cdef public Py_ssize_t count
    cdef public Py_ssize_t size
    cdef uint64_t* buf

    def __cinit__(self, Py_ssize_t size):
        self.buf = <uint64_t*>malloc(sizeof(uint64_t) * (size if size > 0 else 1))
        if self.buf == NULL:
            raise MemoryError()
        self.size = size
        self.start = 0
        self.count = 0

    def __dealloc__(self):
        free(self.buf)

    def clone(self):
        cdef Inflights c = Inflights(self.size)
        cdef Py_ssize_t i
        for i in range(self.size):
            c.buf[i] = self.buf[i]
        c.start = self.start
        c.count = self.count
        return c

    @property
    def buffer(self):
        return [self.buf[i] for i in range(self.size)]

    cpdef add(self, uint64_t index):
        if self.count >= self.size:
            raise RuntimeError("cannot add into a Full inflights")
        cdef Py_ssize_t nxt = self.start + self.count
        if nxt >= self.size:
            nxt -= self.size
        self.buf[nxt] = index
        self.count += 1

    cpdef free_le(self, uint64_t to):
        if self.count == 0 or to < self.buf[self.start]:
            return
        cdef Py_ssize_t idx = self.start
        cdef Py_ssize_t i = 0
        while i < self.count:
            if to < self.buf[idx]:
                break
            idx += 1
            if idx >= self.size:
                idx -= self.size
            i += 1
        self.count -= i
        self.start = idx
        if self.count == 0:
            self.start = 0

    cpdef free_first_one(self):
        if self.count:
            self.free_le(self.buf[self.start])

    cpdef bint full(self):
        return self.count == self.size

    cpdef reset(self):
        self.count = 0
        self.start = 0
