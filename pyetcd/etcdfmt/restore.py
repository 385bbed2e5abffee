"""etcdutl's ``snapshot restore`` (etcdutl/snapshot/v3_snapshot.go Restore, etcd 3.5.1): turn a
backend snapshot into the data directory of a new cluster's member.

Steps, as etcdutl takes them:

1. validate the flags: peer URLs, the initial cluster map, ServerConfig.VerifyBootstrap; compute
   member IDs and the cluster ID from the URLs and the token; the data dir must be missing or
   empty and a separate WAL dir must not exist;
2. saveDB: copy the snapshot to ``<data>/member/snap/db``; a file of ``n % 512 == 32`` bytes
   ends in the sha256 of the rest, which is cut off and checked (unless --skip-hash-check); a
   file without it is refused unless --skip-hash-check; then empty the ``members`` and
   ``members_removed`` buckets;
3. saveWALAndSnap: add every member (in ID order) to a fresh v2 store
   (``/0/members/<id>/raftAttributes``) and to the backend's ``members`` bucket; create the WAL
   with metadata {this member, cluster}; save one ConfChangeAddNode entry per member (term 1,
   indexes 1..n, context = the member's JSON), hard state {term 1, vote = first member,
   commit n}; write the v2 store JSON as the raft snapshot (term 1, index n, voters = all
   members) to ``<data>/member/snap``; mark that snapshot in the WAL;
4. updateCIndex: meta ``consistent_index`` = n, ``term`` = 1.

The backend's ``confState`` in ``meta`` is left as the snapshot had it, as etcdutl 3.5.1 does.
The bbolt file is rewritten in one pass by pyetcd.bolt with the final contents of steps 2-4.
"""
from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field

from pyetcd.cli.gojson import go_string
from pyetcd.etcdfmt import pb, snap, wal
from pyetcd.etcdfmt.membership import (ConfigError, Member, cluster_from_urls_map, new_urls,
                                       new_urls_map, verify_bootstrap)

__all__ = ["ConfigError", "OpenDatabaseError", "RestoreConfig", "RestoreError", "RestoreResult",
           "has_checksum", "mkdir_all", "restore"]
from pyetcd.etcdfmt.v2store import V2Store

SHA256_SIZE = 32
MEMBERS, MEMBERS_REMOVED, CLUSTER, META = b"members", b"members_removed", b"cluster", b"meta"
CONSISTENT_INDEX, TERM = b"consistent_index", b"term"


class RestoreError(Exception):
    """A restore that stops with etcdutl's error text (exit code 1)."""


class OpenDatabaseError(RestoreError):
    """The copied snapshot is not a bbolt file: etcdutl panics ("failed to open database")."""


@dataclass
class RestoreConfig:
    snapshot_path: str
    name: str = "default"
    output_data_dir: str = ""
    output_wal_dir: str = ""
    peer_urls: list[str] = field(default_factory=lambda: ["http://localhost:2380"])
    initial_cluster: str = "default=http://localhost:2380"
    initial_cluster_token: str = "etcd-cluster"
    skip_hash_check: bool = False


@dataclass
class RestoreResult:
    member_id: int
    cluster_id: int
    members: list[Member]
    data_dir: str
    wal_dir: str
    snap_dir: str


def _noop_log(msg: str, fields: dict, caller: str, stack: bool = False, level: str = "info") -> None:
    pass


def _os_error(op: str, path: str, e: OSError) -> RestoreError:
    """Go's *PathError text: "<op> <path>: <lower-case errno text>"."""
    return RestoreError(f"{op} {path}: {(e.strerror or str(e)).lower()}")


def has_checksum(n: int) -> bool:
    """A `snapshot save` file ends in a 32-byte sha256; 512 divides the rest (a disk sector)."""
    return n % 512 == SHA256_SIZE


def _dir_empty(path: str) -> bool:
    try:
        return not os.listdir(path)
    except OSError:
        return False


def mkdir_all(path: str, mode: int = 0o700) -> None:
    """os.MkdirAll: every missing level gets ``mode`` (os.makedirs gives it to the leaf only)."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(os.path.normpath(path))
    if parent and parent != path:
        mkdir_all(parent, mode)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        if not os.path.isdir(path):
            raise


def _create_dir_all(path: str) -> None:
    """fileutil.CreateDirAll: make it (0700) and insist that it is empty."""
    mkdir_all(path)
    names = sorted(os.listdir(path))
    if names:
        quoted = " ".join(go_string(n) for n in names)
        raise RestoreError(f"expected {go_string(path)} to be empty, got [{quoted}]")


def restore(cfg: RestoreConfig, log=_noop_log) -> RestoreResult:
    """Restore cfg.snapshot_path into a new data dir. ``log(msg, fields, caller, stack=False,
    level="info")`` receives the lines etcdutl logs (stack=True where etcdutl adds a "stack"
    field). Raises ConfigError/RestoreError with etcdutl's error texts."""
    peer_urls = new_urls(cfg.peer_urls)
    cluster = new_urls_map(cfg.initial_cluster)
    verify_bootstrap(cfg.name, peer_urls, cluster, log)
    cid, members = cluster_from_urls_map(cfg.initial_cluster_token, cluster)

    data_dir = cfg.output_data_dir or cfg.name + ".etcd"
    if os.path.exists(data_dir) and not _dir_empty(data_dir):
        raise RestoreError(f"data-dir {go_string(data_dir)} not empty or could not be read")
    wal_dir = cfg.output_wal_dir
    if not wal_dir:
        wal_dir = os.path.join(data_dir, "member", "wal")
    elif os.path.exists(wal_dir):
        raise RestoreError(f"wal-dir {go_string(wal_dir)} exists")
    snap_dir = os.path.join(data_dir, "member", "snap")
    paths = {"path": cfg.snapshot_path, "wal-dir": wal_dir, "data-dir": data_dir, "snap-dir": snap_dir}
    log("restoring snapshot", dict(paths), "snapshot/v3_snapshot.go:251", stack=True)

    db_path = os.path.join(snap_dir, "db")
    _copy_and_verify_db(cfg, snap_dir, db_path)
    log("Trimming membership information from the backend...", {}, "membership/store.go:141")

    # the new members go to the v2 store and to the backend, in ID order
    local = next(m for m in members if m.name == cfg.name)
    st = V2Store()
    for m in members:
        st.create(f"/0/members/{m.id:x}/raftAttributes", m.raft_attributes_json())
        log("added member", {"cluster-id": f"{cid:x}", "local-member-id": "0",
                             "added-peer-id": f"{m.id:x}", "added-peer-peer-urls": m.peer_urls},
            "membership/cluster.go:421")
    commit, term = len(members), 1
    _rewrite_db(db_path, members, commit, term)
    _save_wal_and_snap(wal_dir, snap_dir, local.id, cid, members, st, commit, term)
    log("restored snapshot", dict(paths), "snapshot/v3_snapshot.go:272")
    return RestoreResult(local.id, cid, members, data_dir, wal_dir, snap_dir)


def _copy_and_verify_db(cfg: RestoreConfig, snap_dir: str, db_path: str) -> None:
    """copyAndVerifyDB: the copy is made before the checks, so a failed check leaves it behind,
    as etcdutl does."""
    src_path = cfg.snapshot_path
    try:
        src = open(src_path, "rb")
    except OSError as e:
        raise _os_error("open", src_path, e) from None
    with src:
        size = os.fstat(src.fileno()).st_size
        if size < SHA256_SIZE:
            raise RestoreError(f"seek {src_path}: invalid argument")
        src.seek(size - SHA256_SIZE)
        sha = src.read(SHA256_SIZE)
        src.seek(0)
        mkdir_all(snap_dir)
        h = hashlib.sha256()
        fd = os.open(db_path, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+b") as out:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
            off = out.tell()
            hashed = has_checksum(off)
            if hashed:
                out.truncate(off - SHA256_SIZE)
    if not hashed and not cfg.skip_hash_check:
        raise RestoreError("snapshot missing hash but --skip-hash-check=false")
    if hashed and not cfg.skip_hash_check:
        with open(db_path, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
        got = h.digest()
        if got != sha:
            raise RestoreError(f"expected sha256 {_go_bytes(sha)}, got {_go_bytes(got)}")


def _go_bytes(b: bytes) -> str:
    """fmt's %v of a []byte: decimal bytes in brackets."""
    return "[" + " ".join(str(x) for x in b) + "]"


def _rewrite_db(db_path: str, members: list[Member], commit: int, term: int) -> None:
    """The backend after TrimMembershipFromBackend, the members' mustSaveMemberToBackend (key:
    the ID in unpadded hex, value: the member's JSON), the buckets SetBackend creates, and
    UpdateConsistentIndex(commit, term)."""
    from pyetcd import bolt

    try:
        db = bolt.open_file(db_path)
    except (bolt.BoltError, OSError, struct.error, ValueError) as e:
        raise OpenDatabaseError(f"failed to open database: {e}") from None
    tmp = db_path + ".restore.tmp"
    try:
        replaced = {
            MEMBERS: sorted((f"{m.id:x}".encode(), m.to_json().encode()) for m in members),
            MEMBERS_REMOVED: [],
        }
        names = set(db.bucket_names()) | {MEMBERS, MEMBERS_REMOVED, CLUSTER}
        if META in names:
            meta = dict(db.items(META))
            meta[CONSISTENT_INDEX] = struct.pack(">Q", commit)
            meta[TERM] = struct.pack(">Q", term)
            replaced[META] = sorted(meta.items())
        # streamed: the other buckets go from the old file to the new one without a copy in memory
        buckets = ((n, replaced[n] if n in replaced else db.items(n)) for n in sorted(names))
        bolt.write_file(tmp, buckets, page_size=db.page_size)
    finally:
        db.close()
    os.chmod(tmp, 0o600)
    os.replace(tmp, db_path)


def _save_wal_and_snap(wal_dir: str, snap_dir: str, local_id: int, cid: int, members: list[Member],
                       st: V2Store, commit: int, term: int) -> None:
    _create_dir_all(wal_dir)
    metadata = pb.Metadata(node_id=local_id, cluster_id=cid).marshal()
    w = wal.WAL.create(wal_dir, metadata)
    try:
        ents = []
        for i, m in enumerate(members):
            cc = pb.ConfChange(type=pb.CONF_CHANGE_ADD_NODE, node_id=m.id, context=m.to_json().encode())
            ents.append(pb.Entry(term=term, index=i + 1, type=pb.ENTRY_CONF_CHANGE, data=cc.marshal()))
        hs = pb.HardState(term=term, vote=members[0].id, commit=commit)
        w.save(hs, ents)
        conf = pb.ConfState(voters=[m.id for m in members])
        raft_snap = pb.Snapshot(data=st.save(),
                                metadata=pb.SnapshotMetadata(conf_state=conf, index=commit, term=term))
        snap.save_snap(snap_dir, raft_snap)
        w.save_snapshot(pb.WalSnapshot(index=commit, term=term, conf_state=conf))
    finally:
        w.close()
