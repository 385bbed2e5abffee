"""`range key [end]`: Range requests, as etcd's `benchmark range`.

--consistency l (linearizable, the default) or s (serializable), --limit, --count-only.
"""
from __future__ import annotations

from .. import runner
from ..runner import UnaryWorkload

COMMAND = "range"
HELP = "Benchmark range"


def add_arguments(p) -> None:
    p.add_argument("key", help="key to range over")
    p.add_argument("end", nargs="?", default=None, help="range end (exclusive); omit for one key")
    p.add_argument("--total", type=int, default=10000, help="Total number of range requests")
    p.add_argument("--consistency", default="l", choices=["l", "s"],
                   help="Linearizable(l) or Serializable(s)")
    p.add_argument("--limit", type=int, default=0, help="Maximum number of results to return")
    p.add_argument("--count-only", action="store_true", help="Only returns the count of keys")
    p.add_argument("--rate", type=float, default=0,
                   help="Maximum range requests per second (0 is no limit)")


def validate(args) -> None:
    if args.limit < 0:
        raise ValueError("--limit must not be negative")


def build(args) -> UnaryWorkload:
    from pyetcd.pb import rpc

    req = rpc.RangeRequest(key=args.key.encode(), serializable=args.consistency == "s",
                           limit=args.limit, count_only=args.count_only)
    if args.end is not None:
        req.range_end = args.end.encode()
    data = req.SerializeToString()  # every request is the same: serialize once
    return UnaryWorkload("/etcdserverpb.KV/Range", lambda i: data)


def run(args):
    return runner.run(__name__, args, args.total)
