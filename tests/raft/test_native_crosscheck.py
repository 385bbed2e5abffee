"""The Cython hot paths must behave exactly like their plain-Python references."""
import random

import pytest

from pyetcd.raft import log as rlog
from pyetcd.raft import quorum, tracker, types

native_log = pytest.importorskip("pyetcd._native.raft_log")
native_quorum = pytest.importorskip("pyetcd._native.raft_quorum")
native_tracker = pytest.importorskip("pyetcd._native.raft_tracker")


def _rand_entry(rng, cls):
    data = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 5, 127, 128, 300])))
    return cls(rng.choice([0, 1, 127, 128, 1 << 40]), rng.choice([1, 2, 300, (1 << 63) + 5]),
               rng.choice([0, 1, 2]), data)


def test_entry_codec_matches_protobuf():
    rng = random.Random(1)
    for _ in range(500):
        e = _rand_entry(rng, native_log.Entry)
        p = types._PyEntry(e.term, e.index, e.type, e.data)
        wire = types._py_encode_entry(p)  # protobuf's own serialization
        assert native_log.encode_entry(e) == wire
        assert native_log.entry_size(e) == types._py_entry_size(p) == len(wire)
        assert native_log.decode_entry(wire) == e


def test_decode_rejects_truncated():
    wire = native_log.encode_entry(native_log.Entry(1, 2, 0, b"abcdef"))
    with pytest.raises(ValueError):
        native_log.decode_entry(wire[:-2])


def test_limit_size_matches():
    rng = random.Random(2)
    for _ in range(300):
        ents = [_rand_entry(rng, native_log.Entry) for _ in range(rng.randrange(0, 8))]
        py_ents = [types._PyEntry(e.term, e.index, e.type, e.data) for e in ents]
        limit = rng.choice([0, 1, 50, 400, 10000])
        a = native_log.limit_size(ents, limit)
        b = types._py_limit_size(py_ents, limit)
        assert len(a) == len(b)


def test_majority_committed_and_vote_match():
    rng = random.Random(3)
    for _ in range(2000):
        n = rng.randrange(0, 20)
        matches = [rng.randrange(0, 50) for _ in range(n)]
        assert native_quorum.majority_committed(matches) == quorum.py_majority_committed(matches)
        yes = rng.randrange(0, n + 1)
        no = rng.randrange(0, n - yes + 1)
        assert native_quorum.majority_vote(n, yes, no) == quorum.py_majority_vote(n, yes, no)


def test_inflights_match():
    rng = random.Random(4)
    for size in (1, 3, 8):
        a, b = native_tracker.Inflights(size), tracker.PyInflights(size)
        nxt = 1
        for _ in range(500):
            op = rng.randrange(4)
            if op == 0 and not b.full():
                nxt += rng.randrange(1, 4)
                a.add(nxt)
                b.add(nxt)
            elif op == 1:
                to = rng.randrange(0, nxt + 2)
                a.free_le(to)
                b.free_le(to)
            elif op == 2:
                a.free_first_one()
                b.free_first_one()
            elif op == 3 and rng.random() < 0.05:
                a.reset()
                b.reset()
            assert (a.count, a.start, a.full()) == (b.count, b.start, b.full())
        with pytest.raises(RuntimeError):
            while True:
                nxt += 1
                a.add(nxt)


def test_unstable_match():
    rng = random.Random(5)
    a, b = native_log.Unstable(5), rlog.PyUnstable(5)
    term = 1
    for _ in range(2000):
        op = rng.randrange(4)
        last = a.maybe_last_index()
        last = a.offset - 1 if last is None else last
        if op == 0:
            after = rng.randrange(max(1, a.offset - 2), last + 2)
            term += rng.random() < 0.3
            k = rng.randrange(1, 4)
            a.truncate_and_append([native_log.Entry(term, after + i) for i in range(k)])
            b.truncate_and_append([types._PyEntry(term, after + i) for i in range(k)])
        elif op == 1 and a.entries:
            i = rng.randrange(a.offset, a.maybe_last_index() + 1)
            t = a.maybe_term(i)
            a.stable_to(i, t)
            b.stable_to(i, t)
        elif op == 2:
            i = rng.randrange(0, last + 3)
            assert a.maybe_term(i) == b.maybe_term(i)
        elif op == 3 and a.entries:
            last = a.maybe_last_index()
            lo = rng.randrange(a.offset, last + 1)
            hi = rng.randrange(lo, last + 2)
            assert [e.index for e in a.slice(lo, hi)] == [e.index for e in b.slice(lo, hi)]
        assert a.offset == b.offset
        assert [(e.term, e.index) for e in a.entries] == [(e.term, e.index) for e in b.entries]
        assert a.maybe_last_index() == b.maybe_last_index()
