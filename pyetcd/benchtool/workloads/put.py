"""`put`: Put requests, as etcd's `benchmark put`."""
from __future__ import annotations

from .. import runner
from ..runner import UnaryWorkload
from . import keys

COMMAND = "put"
HELP = "Benchmark put"


def add_arguments(p) -> None:
    p.add_argument("--total", type=int, default=10000, help="Total number of put requests")
    p.add_argument("--key-size", type=int, default=8, help="Key size of put request")
    p.add_argument("--val-size", type=int, default=8, help="Value size of put request")
    p.add_argument("--key-space-size", type=int, default=1, help="Maximum possible keys")
    p.add_argument("--sequential-keys", action="store_true",
                   help="Use sequential keys instead of random keys")
    p.add_argument("--rate", type=float, default=0,
                   help="Maximum puts per second (0 is no limit)")


def validate(args) -> None:
    keys.check_key_space(args.key_size, args.key_space_size)


def build(args) -> UnaryWorkload:
    from pyetcd.pb import rpc

    pick = keys.KeyPicker(args.key_size, args.key_space_size, args.sequential_keys)
    value = keys.random_value(args.val_size)

    def make(i: int) -> bytes:
        return rpc.PutRequest(key=pick(i), value=value).SerializeToString()

    return UnaryWorkload("/etcdserverpb.KV/Put", make)


def run(args):
    return runner.run(__name__, args, args.total)
