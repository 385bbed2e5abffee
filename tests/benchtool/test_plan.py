"""Key generation and how a run is divided among worker processes."""
import argparse

import pytest

from pyetcd.benchtool import runner
from pyetcd.benchtool.workloads import keys


@pytest.mark.parametrize("n,expect", [(0, "00"), (1, "02"), (-1, "01"), (63, "7e"),
                                      (64, "8001"), (150, "ac02"), (8191, "fe7f")])
def test_zigzag_varint_matches_go_putvarint(n, expect):
    assert keys.zigzag_varint(n).hex() == expect


def test_key_bytes_padding_and_overflow():
    assert keys.key_bytes(150, 8) == bytes.fromhex("ac02") + bytes(6)
    with pytest.raises(ValueError):
        keys.key_bytes(64, 1)
    with pytest.raises(ValueError):
        keys.check_key_space(1, 100)   # key 99 needs 2 bytes
    keys.check_key_space(1, 64)        # key 63 fits in one


def test_key_picker_sequential_and_random():
    seq = keys.KeyPicker(8, 5, sequential=True)
    assert [seq(i) for i in range(7)] == [keys.key_bytes(n, 8) for n in (0, 1, 2, 3, 4, 0, 1)]
    rnd = keys.KeyPicker(8, 3, sequential=False)
    allowed = {keys.key_bytes(n, 8) for n in range(3)}
    assert {rnd(0) for _ in range(200)} == allowed


def _args(**kw):
    base = dict(procs=1, clients=1, conns=1, endpoints=["127.0.0.1:2379"], dial_timeout=1.0, rate=0)
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.mark.parametrize("procs,clients,conns,total", [(1, 1, 1, 10), (3, 64, 8, 1000),
                                                       (4, 10, 1, 7), (2, 64, 1, 0), (8, 3, 2, 5)])
def test_plan_covers_every_index_once(procs, clients, conns, total):
    plans = runner.plan("m", _args(procs=procs, clients=clients, conns=conns), total)
    assert len(plans) == min(procs, clients)
    assert plans[0].lo == 0 and plans[-1].hi == total
    assert all(a.hi == b.lo for a, b in zip(plans, plans[1:]))
    assert sum(p.clients for p in plans) == clients
    assert all(p.clients >= 1 and p.conns >= 1 for p in plans)
    assert sum(p.conns for p in plans) == max(conns, len(plans))


def test_plan_splits_rate_and_rotates_endpoints():
    plans = runner.plan("m", _args(procs=2, clients=4, rate=100.0,
                                   endpoints=["a:1", "b:2"]), 10)
    assert [p.rate for p in plans] == [50.0, 50.0]
    assert [p.endpoints[0] for p in plans] == ["a:1", "b:2"]


def test_default_procs():
    import os

    ncpu = os.cpu_count() or 1
    assert runner.default_procs(1) == 1
    assert runner.default_procs(16) == 1
    assert runner.default_procs(17) == min(ncpu, 2)
    assert runner.default_procs(64) == min(ncpu, 4)
