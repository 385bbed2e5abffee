"""Key and value generation shared by the write workloads.

Keys follow etcd's benchmark tool: a ``--key-size`` byte buffer of zeros with the key number
written at the front as a zigzag varint (Go's binary.PutVarint), so the same flags write the
same keys as etcd's tool does and runs of the two can be compared key for key.
"""
from __future__ import annotations

import os
import random

from pyetcd.etcdfmt.pb import uvarint


def zigzag_varint(n: int) -> bytes:
    return uvarint((n << 1) if n >= 0 else ((-n << 1) - 1))


def key_bytes(n: int, size: int) -> bytes:
    v = zigzag_varint(n)
    if len(v) > size:
        raise ValueError(f"key number {n} needs {len(v)} bytes, more than --key-size {size}")
    return v + bytes(size - len(v))


def check_key_space(key_size: int, key_space_size: int) -> None:
    """Fail early, before any worker starts, if the largest key does not fit --key-size."""
    if key_space_size < 1:
        raise ValueError("--key-space-size must be at least 1")
    key_bytes(key_space_size - 1, key_size)


def random_value(size: int) -> bytes:
    # Printable bytes keep etcdctl output readable; the server treats them as opaque anyway.
    return bytes(random.Random(os.urandom(8)).choices(b"abcdefghijklmnopqrstuvwxyz0123456789", k=size))


class KeyPicker:
    """Key for request index i: ``i % space`` when sequential, else uniformly random in the space."""

    def __init__(self, key_size: int, space: int, sequential: bool):
        check_key_space(key_size, space)
        self.size = key_size
        self.space = space
        self.sequential = sequential
        self._rand = random.Random(os.urandom(8))
        # Small key spaces (the common case) are precomputed: one list index per request.
        self._table = [key_bytes(n, key_size) for n in range(space)] if space <= 1 << 16 else None

    def __call__(self, i: int) -> bytes:
        n = i % self.space if self.sequential else self._rand.randrange(self.space)
        return self._table[n] if self._table is not None else key_bytes(n, self.size)
