"""The printer interface (etcdctl's `printer`): one method per response kind.

The base class answers every method with etcdctl's "<format> not supported as output format";
each --write-out format lives in its own module and overrides what it supports.
"""
from __future__ import annotations

import sys

from pyetcd.cli.base import EXIT_BAD_FEATURE, fail

METHODS = (
    "delete", "get", "put", "txn", "watch", "grant", "revoke", "keep_alive", "time_to_live", "leases",
    "member_add", "member_remove", "member_update", "member_promote", "member_list",
    "endpoint_health", "endpoint_status", "endpoint_hashkv", "alarm", "move_leader", "db_status",
    "role_add", "role_get", "role_delete", "role_list", "role_grant_permission",
    "role_revoke_permission", "user_add", "user_get", "user_list", "user_change_password",
    "user_grant_role", "user_revoke_role", "user_delete", "auth_status",
)


class Printer:
    fmt = ""

    def __init__(self, is_hex: bool = False):
        self.is_hex = is_hex
        self.out = sys.stdout

    def write(self, s: str) -> None:
        self.out.write(s)

    def unsupported(self, *_a, **_k):
        fail(EXIT_BAD_FEATURE, f"{self.fmt} not supported as output format")


for _m in METHODS:
    setattr(Printer, _m, Printer.unsupported)


def new_printer(fmt: str, is_hex: bool) -> Printer:
    if fmt == "simple":
        from pyetcd.cli.printer_simple import SimplePrinter as P
    elif fmt == "json":
        from pyetcd.cli.printer_json import JSONPrinter as P
    elif fmt == "fields":
        from pyetcd.cli.printer_fields import FieldsPrinter as P
    elif fmt == "protobuf":
        from pyetcd.cli.printer_protobuf import PBPrinter as P
    else:
        from pyetcd.cli.printer_table import TablePrinter as P
    return P(is_hex)


# --- rows shared by the simple and table printers ------------------------------------------

def member_list_table(resp):
    hdr = ["ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"]
    rows = []
    for m in resp.members:
        rows.append([f"{m.ID:x}", "started" if m.name else "unstarted", m.name,
                     ",".join(m.peerURLs), ",".join(m.clientURLs), _b(m.isLearner)])
    return hdr, rows


def endpoint_status_table(statuses):
    from pyetcd.cli.goutil import humanize_bytes
    hdr = ["endpoint", "ID", "version", "db size", "is leader", "is learner", "raft term",
           "raft index", "raft applied index", "errors"]
    rows = []
    for ep, r in statuses:
        rows.append([ep, f"{r.header.member_id:x}", r.version, humanize_bytes(r.dbSize),
                     _b(r.leader == r.header.member_id), _b(r.isLearner), str(r.raftTerm),
                     str(r.raftIndex), str(r.raftAppliedIndex), ", ".join(r.errors)])
    return hdr, rows


def endpoint_health_table(healths):
    hdr = ["endpoint", "health", "took", "error"]
    return hdr, [[h.ep, _b(h.health), h.took, h.error] for h in healths]


def endpoint_hashkv_table(hashes):
    return ["endpoint", "hash"], [[ep, str(r.hash)] for ep, r in hashes]


def db_status_table(ds):
    from pyetcd.cli.goutil import humanize_bytes
    return (["hash", "revision", "total keys", "total size"],
            [[f"{ds.hash:x}", str(ds.revision), str(ds.total_key), humanize_bytes(ds.total_size)]])


def _b(v) -> str:
    return "true" if v else "false"


class Health:
    """epHealth: one endpoint's health check result."""

    def __init__(self, ep, health, took, error=""):
        self.ep, self.health, self.took, self.error = ep, health, took, error


class DBStatus:
    def __init__(self, hash_, revision, total_key, total_size):
        self.hash, self.revision, self.total_key, self.total_size = hash_, revision, total_key, total_size
