"""Member and cluster IDs computed the way etcd computes them, so the same flags give the same IDs.

etcd (server/etcdserver/api/membership): a member ID is the first 8 bytes (big-endian) of
sha1(sorted peer URLs joined + cluster token [+ unix time when added at runtime]); the cluster ID
is the first 8 bytes of sha1 over the sorted member IDs, each as 8 big-endian bytes.
"""
from __future__ import annotations

import hashlib
import struct


def member_id(peer_urls: list[str], cluster_token: str, now: int | None = None) -> int:
    b = "".join(sorted(peer_urls)).encode() + cluster_token.encode()
    if now is not None:
        b += str(int(now)).encode()
    return struct.unpack(">Q", hashlib.sha1(b).digest()[:8])[0]


def cluster_id(member_ids: list[int]) -> int:
    b = b"".join(struct.pack(">Q", m) for m in sorted(member_ids))
    return struct.unpack(">Q", hashlib.sha1(b).digest()[:8])[0]
