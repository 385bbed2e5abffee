"""pyetcd's backend buckets <-> etcd 3.5's bbolt buckets.

pyetcd keeps etcd's buckets as SQLite tables, and most of them hold exactly etcd's bytes
(``key``: 17-byte revisions -> mvccpb.KeyValue; ``meta``: consistent_index, term and the
compaction marks). Three differ, and are translated here:

==================  ===========================================  ==========================================
bucket              pyetcd                                        etcd 3.5
==================  ===========================================  ==========================================
members             8-byte big-endian id -> MemberInfo JSON       "%x" id -> Go JSON of membership.Member
members_removed     8-byte big-endian id -> b""                   "%x" id -> b"removed"   
lease               8-byte id -> id, TTL, remaining (3 x >q)      8-byte id -> leasepb.Lease protobuf
==================  ===========================================  ==========================================

Exporting also adds what a running etcd 3.5.1 always has in its file: ``cluster/clusterVersion``
("3.5.0"), ``auth/authRevision`` (1) and ``meta/confState`` (the voters and learners of the member
list, as Go's json.Marshal writes raftpb.ConfState). So ``Maintenance.Snapshot`` can stream a
bbolt file that etcdutl reads and restores, and an etcd data dir can be imported into pyetcd.
"""
from __future__ import annotations

import json
import struct
from typing import Iterable, Iterator

_REC = struct.Struct(">qqq")

# etcd 3.5.1 creates these buckets (mvcc, lease, membership, alarm and auth stores).
ETCD_BUCKETS = (b"alarm", b"auth", b"authRoles", b"authUsers", b"cluster", b"key", b"lease",
                b"members", b"members_removed", b"meta")
CLUSTER_VERSION = b"3.5.0"


# ---- leasepb.Lease {int64 ID = 1; int64 TTL = 2; int64 RemainingTTL = 3} (proto3) ----------

def encode_leasepb(lease_id: int, ttl: int, remaining: int) -> bytes:
    from pyetcd.etcdfmt.pb import f_varint
    return b"".join(f_varint(field, v) for field, v in ((1, lease_id), (2, ttl), (3, remaining)) if v)


def decode_leasepb(data: bytes) -> tuple[int, int, int]:
    from pyetcd.etcdfmt.pb import iter_fields
    vals = [0, 0, 0]
    for field, wire, v in iter_fields(data):
        if wire != 0:
            raise ValueError(f"leasepb: unexpected wire type {wire}")
        if 1 <= field <= 3:
            vals[field - 1] = v - (1 << 64) if v >= 1 << 63 else v
    return vals[0], vals[1], vals[2]


# ---- members -----------------------------------------------------------------------------

def member_to_etcd(m: dict) -> bytes:
    """Go's json.Marshal of membership.Member as etcd 3.5.1 keeps it in its backend (etcd's
    backend gets clientURLs only through the v2 store, so a running etcd's file has none; they
    come back when a member publishes itself)."""
    from pyetcd.etcdfmt.membership import Member
    return Member(int(m["id"]), m.get("name") or "", list(m.get("peerURLs") or []),
                  list(m.get("clientURLs") or []), bool(m.get("isLearner"))).to_json().encode()


def member_from_etcd(value: bytes) -> bytes:
    """etcd's member JSON -> pyetcd's MemberInfo encoding."""
    from pyetcd.server.membership import MemberInfo
    return MemberInfo.from_json(json.loads(value.decode())).encode()


def conf_state_json(members: list[dict]) -> bytes:
    """meta/confState as etcd 3.5 writes it: Go JSON of raftpb.ConfState (omitempty lists)."""
    voters = sorted(int(m["id"]) for m in members if not m.get("isLearner"))
    learners = sorted(int(m["id"]) for m in members if m.get("isLearner"))
    out: dict = {}
    if voters:
        out["voters"] = voters
    if learners:
        out["learners"] = learners
    out["auto_leave"] = False
    return json.dumps(out, separators=(",", ":")).encode()


# ---- whole files -------------------------------------------------------------------------

def export_buckets(backend) -> Iterator[tuple[bytes, Iterable[tuple[bytes, bytes]]]]:
    """The backend as etcd 3.5.1's buckets, in byte order of name, each sorted by key: the input
    of ``pyetcd.bolt.write_file``. Reads lazily, bucket by bucket."""
    members = [json.loads(v.decode()) for _, v in backend.range("members")]
    names = sorted(set(ETCD_BUCKETS) | {n.encode() for n in backend.bucket_names()})
    for name in names:
        yield name, _export_items(backend, name.decode(), members)


def _export_items(backend, name: str, members: list[dict]):
    items: Iterable = backend.range(name) if name in backend.bucket_names() else iter(())
    if name == "members":
        yield from sorted((b"%x" % int(m["id"]), member_to_etcd(m)) for m in members)  # Go's types.ID.String()
    elif name == "members_removed":
        yield from sorted((b"%x" % int.from_bytes(k, "big"), b"removed") for k, _ in items)
    elif name == "lease":
        for k, v in items:
            yield k, encode_leasepb(*_REC.unpack(v))
    elif name == "cluster":
        yield from _with_default(items, b"clusterVersion", CLUSTER_VERSION)
    elif name == "auth":
        yield from _with_default(items, b"authRevision", struct.pack(">Q", 1))
    elif name == "meta":
        yield from _with_default(items, b"confState", conf_state_json(members))
    else:
        yield from items


def _with_default(items, key: bytes, value: bytes):
    """items (sorted) with (key, value) merged in unless the bucket has that key already."""
    pending = True
    for k, v in items:
        if pending and k >= key:
            if k != key:
                yield key, value
            pending = False
        yield k, v
    if pending:
        yield key, value


def import_items(name: bytes, items: Iterable[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, bytes]]:
    """One of etcd's buckets as pyetcd stores it."""
    if name == b"members":
        for k, v in items:
            yield int(k.decode(), 16).to_bytes(8, "big"), member_from_etcd(v)
    elif name == b"members_removed":
        for k, _ in items:
            yield int(k.decode(), 16).to_bytes(8, "big"), b""
    elif name == b"lease":
        for k, v in items:
            yield k, _REC.pack(*decode_leasepb(v))
    else:
        yield from items


def backend_to_bolt(backend, path: str) -> int:
    """Write the backend as an etcd 3.5 bbolt file at path; returns its size."""
    from pyetcd.bolt import write_file
    return write_file(path, export_buckets(backend))


def bolt_to_backend(bolt_path: str, sqlite_path: str) -> None:
    """Create a pyetcd SQLite backend at sqlite_path holding an etcd bbolt file's buckets."""
    from pyetcd.bolt import open_file
    from pyetcd.storage.backend import BUCKETS, Backend

    with open_file(bolt_path) as db:
        names = db.bucket_names()
        be = Backend(sqlite_path, buckets=tuple(sorted(set(BUCKETS) | {n.decode() for n in names})))
        _copy_into(db, names, be)


def _copy_into(db, names, be) -> None:
    try:
        for name in names:
            batch = []
            for k, v in import_items(name, db.items(name)):
                batch.append((k, v))
                if len(batch) >= 10000:
                    be.put_many(name.decode(), batch)
                    batch = []
            if batch:
                be.put_many(name.decode(), batch)
        be.force_commit()
    finally:
        be.close()
