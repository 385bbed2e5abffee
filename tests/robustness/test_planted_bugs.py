"""Mutation tests: the full harness (traffic, history, checkers) against an in-process fake etcd.

The correct fake must pass; each deliberately broken variant must be flagged by the checker
meant to catch it. Fast (a few seconds each), no real processes.
"""
import asyncio

import pytest

from pyetcd.robustness import recovery
from pyetcd.robustness.history import History
from pyetcd.robustness.runner import analyse
from pyetcd.robustness.traffic import Traffic

from .fake_etcd import FakeEtcd

PREFIX = "/robust/fake/"


def run_against_fake(bug, seed, duration=3.0):
    fake = FakeEtcd(bug, seed).start()
    try:
        traffic = Traffic(lambda: [fake.endpoint], PREFIX, seed, clients=4, keys=4, rate=400)

        async def main():
            try:
                return await traffic.run(duration)
            finally:
                await traffic.close()
        history = asyncio.run(main())
        final = recovery.final_revision([fake.endpoint], PREFIX)
        states = {fake.endpoint: recovery.member_state(fake.endpoint, PREFIX, final)}
        hists = {fake.endpoint: recovery.member_history(fake.endpoint, PREFIX, 1, final)}
        return history, analyse(history, final, states, member_histories=(1, hists))
    finally:
        fake.stop()


def test_correct_fake_passes():
    history, result = run_against_fake(None, 1)
    assert result.stats["ops_ok"] > 200
    assert result.stats["watch_events"] > 100
    assert result.errors == {}
    # the history survives a JSON round trip and still checks clean
    again = History.from_json(history.to_json())
    assert analyse(again, result.stats["final_rev"]).errors == {}


@pytest.mark.parametrize("bug,checker", [
    ("stale_read", "linearizability"),
    ("lost_write", "linearizability"),
    ("lost_write", "durability"),
    ("reordered_watch", "watch"),
])
def test_planted_bug_is_flagged(bug, checker):
    _, result = run_against_fake(bug, 2)
    assert not result.passed
    assert result.errors.get(checker), f"{bug} not flagged by {checker}: {result.errors}"
