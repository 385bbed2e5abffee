"""`txn-put`: transactions of --txn-ops puts each, as etcd's `benchmark txn-put`.

Like etcd's tool, the keys are sequential: transaction i writes keys
``(i*txn_ops + j) % key_space_size`` for j in range(txn_ops).
"""
from __future__ import annotations

from .. import runner
from ..runner import UnaryWorkload
from . import keys

COMMAND = "txn-put"
HELP = "Benchmark txn-put"


def add_arguments(p) -> None:
    p.add_argument("--total", type=int, default=10000, help="Total number of txn requests")
    p.add_argument("--key-size", type=int, default=8, help="Key size of txn put")
    p.add_argument("--val-size", type=int, default=8, help="Value size of txn put")
    p.add_argument("--key-space-size", type=int, default=1, help="Maximum possible keys")
    p.add_argument("--txn-ops", type=int, default=1, help="Number of puts per txn")
    p.add_argument("--rate", type=float, default=0,
                   help="Maximum txns per second (0 is no limit)")


def validate(args) -> None:
    keys.check_key_space(args.key_size, args.key_space_size)
    if args.txn_ops < 1:
        raise ValueError("--txn-ops must be at least 1")
    if args.txn_ops > args.key_space_size:
        # etcd rejects a txn that writes one key twice ("duplicate key given in txn request").
        raise ValueError("--txn-ops must not exceed --key-space-size (a txn cannot put a key twice)")


def build(args) -> UnaryWorkload:
    from pyetcd.pb import rpc

    pick = keys.KeyPicker(args.key_size, args.key_space_size, sequential=True)
    value = keys.random_value(args.val_size)
    ops = args.txn_ops

    def make(i: int) -> bytes:
        base = i * ops
        return rpc.TxnRequest(success=[
            rpc.RequestOp(request_put=rpc.PutRequest(key=pick(base + j), value=value))
            for j in range(ops)]).SerializeToString()

    return UnaryWorkload("/etcdserverpb.KV/Txn", make)


def run(args):
    return runner.run(__name__, args, args.total)
