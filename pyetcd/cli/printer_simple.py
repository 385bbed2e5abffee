"""`-w simple`: etcdctl's default, human-oriented output."""
from __future__ import annotations

import sys

from pyetcd.cli import printer as P
from pyetcd.cli.goutil import hex_bytes
from pyetcd.keyrange import prefix_end


def _enc(s) -> bytes:
    return s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")


range_end_prefix = prefix_end  # clientv3.GetPrefixRangeEnd


class SimplePrinter(P.Printer):
    fmt = "simple"
    value_only = False

    def w(self, *parts) -> None:
        sys.stdout.flush()
        sys.stdout.buffer.write(b"".join(_enc(p) for p in parts))

    def kv(self, kv) -> None:
        k, v = kv.key, kv.value
        if self.is_hex:
            k, v = hex_bytes(k), hex_bytes(v)
        if not self.value_only:
            self.w(k, "\n")
        self.w(v, "\n")

    def delete(self, r):
        self.w(f"{r.deleted}\n")
        for kv in r.prev_kvs:
            self.kv(kv)

    def get(self, r):
        for kv in r.kvs:
            self.kv(kv)

    def put(self, r):
        self.w("OK\n")
        if r.HasField("prev_kv"):
            self.kv(r.prev_kv)

    def txn(self, r):
        self.w("SUCCESS\n" if r.succeeded else "FAILURE\n")
        for op in r.responses:
            self.w("\n")
            which = op.WhichOneof("response")
            if which == "response_delete_range":
                self.delete(op.response_delete_range)
            elif which == "response_put":
                self.put(op.response_put)
            elif which == "response_range":
                self.get(op.response_range)
            else:
                self.w(f"unexpected response {op}\n")

    def watch(self, r):
        for e in r.events:
            self.w("PUT\n" if e.type == 0 else "DELETE\n")
            if e.HasField("prev_kv"):
                self.kv(e.prev_kv)
            self.kv(e.kv)

    def grant(self, r):
        self.w(f"lease {r.ID:016x} granted with TTL({r.TTL}s)\n")

    def revoke(self, lease_id, r):
        self.w(f"lease {lease_id:016x} revoked\n")

    def keep_alive(self, r):
        self.w(f"lease {r.ID:016x} keepalived with TTL({r.TTL})\n")

    def time_to_live(self, r, keys):
        if r.grantedTTL == 0 and r.TTL == -1:
            self.w(f"lease {r.ID:016x} already expired\n")
            return
        txt = f"lease {r.ID:016x} granted with TTL({r.grantedTTL}s), remaining({r.TTL}s)"
        if keys:
            txt = _enc(txt) + b", attached keys([" + b" ".join(r.keys) + b"])"
        self.w(txt, "\n")

    def leases(self, r):
        self.w(f"found {len(r.leases)} leases\n")
        for ls in r.leases:
            self.w(f"{ls.ID:016x}\n")

    def alarm(self, r):
        names = {0: "NONE", 1: "NOSPACE", 2: "CORRUPT"}
        for a in r.alarms:
            parts = []
            if a.memberID:
                parts.append(f"memberID:{a.memberID} ")
            if a.alarm:
                parts.append(f"alarm:{names.get(a.alarm, a.alarm)} ")
            self.w("".join(parts) + "\n")

    def member_add(self, r):
        self.w(f"Member {r.member.ID:16x} added to cluster {r.header.cluster_id:16x}\n")

    def member_remove(self, mid, r):
        self.w(f"Member {mid:16x} removed from cluster {r.header.cluster_id:16x}\n")

    def member_update(self, mid, r):
        self.w(f"Member {mid:16x} updated in cluster {r.header.cluster_id:16x}\n")

    def member_promote(self, mid, r):
        self.w(f"Member {mid:16x} promoted in cluster {r.header.cluster_id:16x}\n")

    def _rows(self, rows):
        for row in rows:
            self.w(", ".join(row) + "\n")

    def member_list(self, r):
        self._rows(P.member_list_table(r)[1])

    def endpoint_health(self, hs):
        for h in hs:
            if not h.error:
                self.w(f"{h.ep} is healthy: successfully committed proposal: took = {h.took}\n")
                sys.stdout.flush()
            else:
                sys.stderr.write(f"{h.ep} is unhealthy: failed to commit proposal: {h.error}\n")

    def endpoint_status(self, statuses):
        self._rows(P.endpoint_status_table(statuses)[1])

    def endpoint_hashkv(self, hashes):
        self._rows(P.endpoint_hashkv_table(hashes)[1])

    def db_status(self, ds):
        self._rows(P.db_status_table(ds)[1])

    def move_leader(self, leader, target, r):
        self.w(f"Leadership transferred from {leader:x} to {target:x}\n")

    def role_add(self, role, r):
        self.w(f"Role {role} created\n")

    def role_get(self, role, r):
        self.w(f"Role {role}\n", "KV Read:\n")
        self._perms(r.perm, (0, 2))
        self.w("KV Write:\n")
        self._perms(r.perm, (1, 2))

    def _perms(self, perms, types):
        for p in perms:
            if p.permType not in types:
                continue
            if not p.range_end:
                self.w(b"\t" + p.key + b"\n")
                continue
            if p.range_end != b"\x00":
                self.w(b"\t[" + p.key + b", " + p.range_end + b")")
            else:
                self.w(b"\t[" + p.key + b", <open ended>")
            if range_end_prefix(p.key) == p.range_end:
                self.w(b" (prefix " + p.key + b")")
            self.w("\n")

    def role_list(self, r):
        for role in r.roles:
            self.w(f"{role}\n")

    def role_delete(self, role, r):
        self.w(f"Role {role} deleted\n")

    def role_grant_permission(self, role, r):
        self.w(f"Role {role} updated\n")

    def role_revoke_permission(self, role, key, end, r):
        if not end:
            self.w(b"Permission of key " + key + b" is revoked from role " + _enc(role) + b"\n")
        elif end != b"\x00":
            self.w(b"Permission of range [" + key + b", " + end + b") is revoked from role "
                   + _enc(role) + b"\n")
        else:
            self.w(b"Permission of range [" + key + b", <open ended> is revoked from role "
                   + _enc(role) + b"\n")

    def user_add(self, name, r):
        self.w(f"User {name} created\n")

    def user_get(self, name, r):
        self.w(f"User: {name}\nRoles:" + "".join(f" {x}" for x in r.roles) + "\n")

    def user_change_password(self, r):
        self.w("Password updated\n")

    def user_grant_role(self, user, role, r):
        self.w(f"Role {role} is granted to user {user}\n")

    def user_revoke_role(self, user, role, r):
        self.w(f"Role {role} is revoked from user {user}\n")

    def user_delete(self, user, r):
        self.w(f"User {user} deleted\n")

    def user_list(self, r):
        for u in r.users:
            self.w(f"{u}\n")

    def auth_status(self, r):
        self.w(f"Authentication Status: {'true' if r.enabled else 'false'}\nAuthRevision: {r.authRevision}\n")
