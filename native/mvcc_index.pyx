# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled MVCC hot paths: the key index (etcd's keyIndex/treeIndex), revision-key codecs and
the protobuf encoding of mvccpb.KeyValue / Event.

Same logic and API as pyetcd/storage/mvcc/index_py.py (the reference, tested side by side).
A revision is an int64 main << 24 | sub (revision.py: SUB_BITS); a generation's revisions live in a growable C array.
"""
from libc.stdint cimport int64_t, uint64_t, uint8_t
from libc.string cimport memcpy
from mvcc_rev cimport SUB_BITS, SUB_MASK, _put_be64, _get_be64, _varint_len, _put_varint
from libc.stdlib cimport realloc, free
from libc.string cimport memmove
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.ref cimport PyObject

from sortedcontainers import SortedList

def rev_to_bytes(int64_t r):
    """17-byte backend key of revision r: main (8 BE) + b"_" + sub (8 BE)."""
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 17)
    cdef char* p = PyBytes_AS_STRING(out)
    _put_be64(p, <uint64_t>(r >> SUB_BITS))
    p[8] = b'_'
    _put_be64(p + 9, <uint64_t>(r & SUB_MASK))
    return out


def tombstone_bytes(int64_t r):
    """18-byte backend key of a tombstone at revision r (the 17 bytes + b"t")."""
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 18)
    cdef char* p = PyBytes_AS_STRING(out)
    _put_be64(p, <uint64_t>(r >> SUB_BITS))
    p[8] = b'_'
    _put_be64(p + 9, <uint64_t>(r & SUB_MASK))
    p[17] = b't'
    return out


def bytes_to_rev(bytes b):
    if PyBytes_GET_SIZE(b) < 17:
        raise ValueError("revision key shorter than 17 bytes")
    cdef const uint8_t* p = <const uint8_t*>PyBytes_AS_STRING(b)
    return <int64_t>((_get_be64(p) << SUB_BITS) | (_get_be64(p + 9) & SUB_MASK))


# -- protobuf encoding of mvccpb.KeyValue -------------------------------------------------

cdef inline Py_ssize_t _kv_len(Py_ssize_t klen, Py_ssize_t vlen, int64_t c, int64_t m,
                               int64_t ver, int64_t lease) noexcept:
    cdef Py_ssize_t n = 0
    if klen:
        n += 1 + _varint_len(<uint64_t>klen) + klen
    if c:
        n += 1 + _varint_len(<uint64_t>c)
    if m:
        n += 1 + _varint_len(<uint64_t>m)
    if ver:
        n += 1 + _varint_len(<uint64_t>ver)
    if vlen:
        n += 1 + _varint_len(<uint64_t>vlen) + vlen
    if lease:
        n += 1 + _varint_len(<uint64_t>lease)
    return n


cdef char* _put_kv(char* p, const char* k, Py_ssize_t klen, const char* v, Py_ssize_t vlen,
                   int64_t c, int64_t m, int64_t ver, int64_t lease) noexcept:
    # proto3 field order 1..6; zero values omitted (what Go's gogoproto Marshal and upb write)
    if klen:
        p[0] = 0x0A
        p = _put_varint(p + 1, <uint64_t>klen)
        memcpy(p, k, klen)
        p += klen
    if c:
        p[0] = 0x10
        p = _put_varint(p + 1, <uint64_t>c)
    if m:
        p[0] = 0x18
        p = _put_varint(p + 1, <uint64_t>m)
    if ver:
        p[0] = 0x20
        p = _put_varint(p + 1, <uint64_t>ver)
    if vlen:
        p[0] = 0x2A
        p = _put_varint(p + 1, <uint64_t>vlen)
        memcpy(p, v, vlen)
        p += vlen
    if lease:
        p[0] = 0x30
        p = _put_varint(p + 1, <uint64_t>lease)
    return p


def encode_kv(bytes key not None, bytes value not None, int64_t create_revision, int64_t mod_revision,
              int64_t version, int64_t lease):
    """Serialized mvccpb.KeyValue, byte-identical to KeyValue(...).SerializeToString()."""
    cdef Py_ssize_t klen = PyBytes_GET_SIZE(key), vlen = PyBytes_GET_SIZE(value)
    cdef Py_ssize_t n = _kv_len(klen, vlen, create_revision, mod_revision, version, lease)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n)
    _put_kv(PyBytes_AS_STRING(out), PyBytes_AS_STRING(key), klen, PyBytes_AS_STRING(value), vlen,
            create_revision, mod_revision, version, lease)
    return out


def encode_put_event(bytes key not None, bytes value not None, int64_t create_revision, int64_t mod_revision,
                     int64_t version, int64_t lease):
    """(serialized KeyValue, serialized PUT Event holding it): one encoding serves both the
    backend record and the event (which the caller parses once with Event.FromString)."""
    cdef Py_ssize_t klen = PyBytes_GET_SIZE(key), vlen = PyBytes_GET_SIZE(value)
    cdef Py_ssize_t n = _kv_len(klen, vlen, create_revision, mod_revision, version, lease)
    cdef Py_ssize_t h = 1 + _varint_len(<uint64_t>n)
    cdef bytes ev = PyBytes_FromStringAndSize(NULL, h + n)
    cdef char* p = PyBytes_AS_STRING(ev)
    p[0] = 0x12  # Event.kv, field 2, length-delimited (type PUT = 0 is omitted)
    p = _put_varint(p + 1, <uint64_t>n)
    _put_kv(p, PyBytes_AS_STRING(key), klen, PyBytes_AS_STRING(value), vlen,
            create_revision, mod_revision, version, lease)
    return PyBytes_FromStringAndSize(PyBytes_AS_STRING(ev) + h, n), ev


# -- key index ----------------------------------------------------------------------------

cdef inline Py_ssize_t _last_at_or_below(const int64_t* revs, Py_ssize_t n, int64_t at) noexcept:
    """Index of the last of revs[:n] (ascending) with main <= at, or -1."""
    cdef int64_t bound = (at << SUB_BITS) | SUB_MASK
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if revs[mid] <= bound:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


cdef class Generation:
    """One life of a key; ``ver`` counts its puts including compacted ones."""

    cdef public int64_t ver
    cdef public int64_t created
    cdef int64_t* revs      # ascending; revs[:n] in use, room for cap
    cdef Py_ssize_t n
    cdef Py_ssize_t cap

    def __init__(self, int64_t created=0, int64_t ver=0):
        self.created = created
        self.ver = ver

    def __dealloc__(self):
        free(self.revs)

    cdef int push(self, int64_t r) except -1:
        cdef Py_ssize_t cap
        cdef int64_t* p
        if self.n == self.cap:
            cap = self.cap * 2 if self.cap else 2
            p = <int64_t*>realloc(self.revs, cap * sizeof(int64_t))
            if p == NULL:
                raise MemoryError()
            self.revs = p
            self.cap = cap
        self.revs[self.n] = r
        self.n += 1
        return 0

    cdef void drop_front(self, Py_ssize_t k) noexcept:
        memmove(self.revs, self.revs + k, (self.n - k) * sizeof(int64_t))
        self.n -= k

    @property
    def revs_list(self):
        return [self.revs[i] for i in range(self.n)]


cdef class KeyIndex:
    """The generations of one key. Invariant: gens is non-empty; all but the last are
    non-empty and end with their tombstone."""

    cdef readonly bytes key
    cdef int64_t modified
    cdef list gens      # of Generation

    def __init__(self, bytes key):
        self.key = key
        self.modified = 0
        self.gens = [Generation()]

    cdef bint is_empty(self):
        return len(self.gens) == 1 and (<Generation>self.gens[0]).n == 0

    cdef int put(self, int64_t r) except -1:
        if r <= self.modified:
            raise ValueError(f"put with revision {r:#x} not above {self.modified:#x} on {self.key!r}")
        cdef Generation g = <Generation>self.gens[len(self.gens) - 1]
        if g.n == 0:
            g.created = r
        g.push(r)
        g.ver += 1
        self.modified = r
        return 0

    cdef bint tombstone(self, int64_t r) except -1:
        cdef Generation g = <Generation>self.gens[len(self.gens) - 1]
        if g.n == 0:
            return False
        self.put(r)
        self.gens.append(Generation())
        return True

    cdef Generation find_generation(self, int64_t at):
        cdef Py_ssize_t last = len(self.gens) - 1, cg
        cdef Generation g
        for cg in range(last, -1, -1):
            g = <Generation>self.gens[cg]
            if g.n == 0:
                continue
            if cg != last and (g.revs[g.n - 1] >> SUB_BITS) <= at:
                return None
            if (g.revs[0] >> SUB_BITS) <= at:
                return g
        return None

    cdef bint get(self, int64_t at, int64_t* mod, int64_t* created, int64_t* ver):
        cdef Generation g = <Generation>self.gens[len(self.gens) - 1]
        cdef Py_ssize_t n
        if g.n and (g.revs[g.n - 1] >> SUB_BITS) <= at:  # the live key at its latest
            mod[0] = g.revs[g.n - 1]
            created[0] = g.created
            ver[0] = g.ver
            return True
        g = self.find_generation(at)
        if g is None:
            return False
        n = _last_at_or_below(g.revs, g.n, at)
        if n < 0:
            return False
        mod[0] = g.revs[n]
        created[0] = g.created
        ver[0] = g.ver - (g.n - 1 - n)
        return True

    cdef Py_ssize_t do_compact(self, int64_t at, set available, Py_ssize_t* ri) except -1:
        cdef Py_ssize_t gi = 0, ngens = len(self.gens)
        cdef Generation g = <Generation>self.gens[0]
        while gi < ngens - 1:
            if (g.revs[g.n - 1] >> SUB_BITS) > at:
                break
            gi += 1
            g = <Generation>self.gens[gi]
        ri[0] = _last_at_or_below(g.revs, g.n, at)
        if ri[0] >= 0:
            available.add(g.revs[ri[0]])
        return gi

    cdef int compact(self, int64_t at, set available) except -1:
        cdef Py_ssize_t ri
        cdef Py_ssize_t gi = self.do_compact(at, available, &ri)
        cdef Generation g = <Generation>self.gens[gi]
        if g.n:
            if ri > 0:
                g.drop_front(ri)
            if g.n == 1 and gi != len(self.gens) - 1:
                available.discard(g.revs[0])
                gi += 1
        if gi:
            del self.gens[:gi]
        return 0

    cdef int keep(self, int64_t at, set available) except -1:
        if self.is_empty():
            return 0
        cdef Py_ssize_t ri
        cdef Py_ssize_t gi = self.do_compact(at, available, &ri)
        cdef Generation g = <Generation>self.gens[gi]
        if g.n and ri == g.n - 1 and gi != len(self.gens) - 1:
            available.discard(g.revs[ri])
        return 0

    def generations(self):
        return [(g.created, g.ver, g.revs_list) for g in self.gens]


cdef class TreeIndex:
    """All keys in byte order with their KeyIndex; ``end``: None = one key, b"" = no bound."""

    cdef object _keys   # sortedcontainers.SortedList of bytes
    cdef dict _map      # bytes -> KeyIndex

    def __init__(self):
        self._keys = SortedList()
        self._map = {}

    def __len__(self):
        return len(self._map)

    cdef inline KeyIndex _ki(self, bytes key):
        cdef PyObject* p = PyDict_GetItem(self._map, key)
        if p == NULL:
            return None
        return <KeyIndex>p

    def key_index(self, bytes key):
        return self._ki(key)

    def generations(self, bytes key):
        cdef KeyIndex ki = self._ki(key)
        return None if ki is None else ki.generations()

    def keys(self):
        return list(self._keys)

    def get(self, bytes key, int64_t at):
        """(modified rev, created rev, version) at main revision ``at``, or None."""
        cdef KeyIndex ki = self._ki(key)
        cdef int64_t mod, created, ver
        if ki is None or not ki.get(at, &mod, &created, &ver):
            return None
        return (mod, created, ver)

    def put(self, bytes key, int64_t r):
        cdef KeyIndex ki = self._ki(key)
        if ki is None:
            ki = KeyIndex(key)
            self._map[key] = ki
            self._keys.add(key)
        ki.put(r)

    def tombstone(self, bytes key, int64_t r):
        cdef KeyIndex ki = self._ki(key)
        if ki is None:
            return False
        return ki.tombstone(r)

    def restore_rev(self, bytes key, int64_t r, bint tomb, int64_t created, int64_t ver):
        """Replay one backend record in revision order (etcd's restoreIntoIndex)."""
        cdef KeyIndex ki = self._ki(key)
        cdef Generation g
        if ki is not None:
            if tomb:
                ki.tombstone(r)
            else:
                ki.put(r)
        elif not tomb:
            ki = KeyIndex(key)
            g = <Generation>ki.gens[0]
            g.created = created
            g.ver = ver
            g.push(r)
            ki.modified = r
            self._map[key] = ki
            self._keys.add(key)

    cdef object _span(self, bytes key, bytes end):
        keys = self._keys
        cdef Py_ssize_t i = keys.bisect_left(key)
        cdef Py_ssize_t j = keys.bisect_left(end) if end else len(keys)
        if j <= i:
            return ()
        if j - i == 1:
            return (keys[i],)
        return keys.islice(i, j)

    def revisions(self, bytes key, bytes end, int64_t at, Py_ssize_t limit=0):
        """(revisions of the keys live at ``at``, at most limit; number of such keys)."""
        cdef KeyIndex ki
        cdef int64_t mod, created, ver
        cdef list revs = []
        cdef Py_ssize_t total = 0
        cdef dict m = self._map
        if end is None:
            ki = self._ki(key)
            if ki is not None and ki.get(at, &mod, &created, &ver):
                return [mod], 1
            return [], 0
        for k in self._span(key, end):
            ki = <KeyIndex>m[k]
            if ki.get(at, &mod, &created, &ver):
                if limit <= 0 or total < limit:
                    revs.append(mod)
                total += 1
        return revs, total

    def count_revisions(self, bytes key, bytes end, int64_t at):
        cdef KeyIndex ki
        cdef int64_t mod, created, ver
        cdef Py_ssize_t total = 0
        cdef dict m = self._map
        if end is None:
            ki = self._ki(key)
            return 1 if ki is not None and ki.get(at, &mod, &created, &ver) else 0
        for k in self._span(key, end):
            ki = <KeyIndex>m[k]
            if ki.get(at, &mod, &created, &ver):
                total += 1
        return total

    def range(self, bytes key, bytes end, int64_t at):
        """(keys, revisions) live at ``at``."""
        cdef KeyIndex ki
        cdef int64_t mod, created, ver
        cdef list keys = [], revs = []
        cdef dict m = self._map
        if end is None:
            ki = self._ki(key)
            if ki is not None and ki.get(at, &mod, &created, &ver):
                return [key], [mod]
            return [], []
        for k in self._span(key, end):
            ki = <KeyIndex>m[k]
            if ki.get(at, &mod, &created, &ver):
                keys.append(k)
                revs.append(mod)
        return keys, revs

    def compact(self, int64_t at):
        """Compact every key at ``at``; drop keys left empty. Returns the revisions kept."""
        cdef set available = set()
        cdef list dead = []
        cdef KeyIndex ki
        for ki in self._map.values():
            ki.compact(at, available)
            if ki.is_empty():
                dead.append(ki.key)
        for k in dead:
            del self._map[k]
            self._keys.remove(k)
        return available

    def keep(self, int64_t at):
        cdef set available = set()
        cdef KeyIndex ki
        for ki in self._map.values():
            ki.keep(at, available)
        return available


# -- restore: the index needs only key, create_revision and version of each record ------------

cdef inline const uint8_t* _get_varint(const uint8_t* p, const uint8_t* end, uint64_t* out) except NULL:
    cdef uint64_t v = 0
    cdef int shift = 0
    while p < end:
        v |= (<uint64_t>(p[0] & 0x7F)) << shift
        if not (p[0] & 0x80):
            out[0] = v
            return p + 1
        p += 1
        shift += 7
        if shift > 63:
            break
    raise ValueError("mvcc: bad varint in KeyValue record")


def decode_kv_head(bytes data not None):
    """(key, create_revision, version, lease) of a serialized mvccpb.KeyValue, skipping the
    value."""
    cdef const uint8_t* p = <const uint8_t*>PyBytes_AS_STRING(data)
    cdef const uint8_t* end = p + PyBytes_GET_SIZE(data)
    cdef uint64_t tag, v, n, wt
    cdef int64_t create = 0, version = 0, lease = 0
    cdef object key = b""
    while p < end:
        p = _get_varint(p, end, &tag)
        wt = tag & 7
        if wt == 0:
            p = _get_varint(p, end, &v)
            if tag >> 3 == 2:
                create = <int64_t>v
            elif tag >> 3 == 4:
                version = <int64_t>v
            elif tag >> 3 == 6:
                lease = <int64_t>v
        elif wt == 2:
            p = _get_varint(p, end, &n)
            if n > <uint64_t>(end - p):
                raise ValueError("mvcc: truncated KeyValue record")
            if tag >> 3 == 1:
                key = PyBytes_FromStringAndSize(<const char*>p, <Py_ssize_t>n)
            p += n
        elif wt == 1:
            p += 8
        elif wt == 5:
            p += 4
        else:
            raise ValueError("mvcc: bad wire type in KeyValue record")
    if p != end:
        raise ValueError("mvcc: truncated KeyValue record")
    return key, create, version, lease
