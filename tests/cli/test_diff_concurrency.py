"""Differential suite: lock and elect (client-side recipes over leases, as etcdctl does them)."""
import re

import pytest


def _norm(b: bytes) -> bytes:
    # the lock/election key ends in the session's lease id, which differs by nature
    b = re.sub(rb"(/)[0-9a-f]{8,16}\b", rb"\1<lease>", b)
    b = re.sub(rb'"key":"[^"]*"|"lease":\d+', b"<k>", b)
    return re.sub(rb'"(Key|Lease)" : .*', b"<k>", b)


def _compare(pair, args, **kw):
    ra, rb = pair.both(*args, **kw)
    assert _norm(pair.normalise(ra.out, "a")) == _norm(pair.normalise(rb.out, "b")), (ra, rb)
    if kw.get("kill_after") is None:
        assert ra.rc == rb.rc, (ra, rb)
        assert pair.normalise(ra.err, "a") == pair.normalise(rb.err, "b"), (ra, rb)
    return ra, rb


@pytest.mark.parametrize("args", [["lock"], ["elect"], ["elect", "e1"], ["elect", "-l", "e1", "prop"],
                                  ["elect", "a", "b", "c"]])
def test_bad_args(pair, args):
    _compare(pair, args)


@pytest.mark.parametrize("fmt", ["simple", "json", "fields"])
def test_lock_held_until_signal(pair, fmt):
    _compare(pair, ["lock", f"lk-{fmt}", "-w", fmt], kill_after=4)


def test_lock_exec(pair):
    _compare(pair, ["lock", "lk-exec", "--", "sh", "-c", 'echo "held $ETCD_LOCK_KEY"'])
    _compare(pair, ["lock", "lk-exec", "--", "false"])
    _compare(pair, ["get", "lk-exec", "--prefix"])


def test_elect_campaign(pair):
    _compare(pair, ["elect", "el1", "proposal-a"], kill_after=4)


def test_elect_observe(pair):
    pair.compare(["put", "el2/0001", "leader-value"])
    _compare(pair, ["elect", "-l", "el2"], kill_after=4)
