"""The interval index against brute force: random inserts, deletes and stabbing queries."""
import random

import pytest

from pyetcd.watch import IntervalIndex


def _contains(start, end, key):
    return start <= key and (not end or key < end)


def _rand_key(rnd):
    return bytes(rnd.choice(b"abcd") for _ in range(rnd.randint(0, 3)))


@pytest.mark.parametrize("seed", range(6))
def test_stab_matches_brute_force(seed):
    rnd = random.Random(seed)
    idx = IntervalIndex(seed)
    model = {}
    for step in range(1500):
        op = rnd.random()
        if op < 0.5 or not model:
            start = _rand_key(rnd)
            end = b"" if rnd.random() < 0.15 else start + _rand_key(rnd) + bytes([rnd.choice(b"abcd")])
            if end and end <= start:
                continue
            idx.insert(start, end, (start, end))
            model[(start, end)] = (start, end)
        elif op < 0.8:
            k = rnd.choice(sorted(model))
            assert idx.delete(*k)
            del model[k]
        else:
            assert not idx.delete(b"zz", b"zzz")
        key = _rand_key(rnd)
        got = sorted(idx.stab(key))
        want = sorted(v for (s, e), v in model.items() if _contains(s, e, key))
        assert got == want, (step, key)
        if step % 100 == 0:
            idx.check()
    idx.check()
    assert [(s, e) for s, e, _ in idx.items()] == sorted(model, key=lambda t: (t[0], (1, b"") if not t[1] else (0, t[1])))


def test_insert_replaces_payload_and_rejects_empty_interval():
    idx = IntervalIndex(1)
    idx.insert(b"a", b"c", 1)
    idx.insert(b"a", b"c", 2)
    assert len(idx) == 1 and idx.stab(b"b") == [2]
    assert idx.stab(b"c") == [] and idx.stab(b"a") == [2]
    idx.insert(b"b", b"", 3)  # from-key: no upper bound
    assert sorted(idx.stab(b"\xff\xff")) == [3]
    with pytest.raises(ValueError):
        idx.insert(b"b", b"a", 4)
    with pytest.raises(ValueError):
        idx.insert(b"b", b"b", 4)
