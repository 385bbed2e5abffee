"""`-w fields`: one `"Name" : value` line per field, etcdctl's scripting-friendly format."""
from __future__ import annotations

import sys

from pyetcd.cli import printer as P
from pyetcd.cli.goutil import quote

_PERM = {0: "READ", 1: "WRITE", 2: "READWRITE"}
_ALARM = {0: "NONE", 1: "NOSPACE", 2: "CORRUPT"}


def _b(v):
    return "true" if v else "false"


class FieldsPrinter(P.Printer):
    fmt = "fields"

    def p(self, s: str) -> None:
        sys.stdout.write(s + "\n")

    def kv(self, pfx, kv):
        self.p(f'"{pfx}Key" : {quote(kv.key)}')
        self.p(f'"{pfx}CreateRevision" : {kv.create_revision}')
        self.p(f'"{pfx}ModRevision" : {kv.mod_revision}')
        self.p(f'"{pfx}Version" : {kv.version}')
        self.p(f'"{pfx}Value" : {quote(kv.value)}')
        self.p(f'"{pfx}Lease" : {kv.lease}')

    def hdr(self, h):
        self.p(f'"ClusterID" : {h.cluster_id}')
        self.p(f'"MemberID" : {h.member_id}')
        self.p(f'"Revision" : {h.revision}')
        self.p(f'"RaftTerm" : {h.raft_term}')

    def delete(self, r):
        self.hdr(r.header)
        self.p(f'"Deleted" : {r.deleted}')
        for kv in r.prev_kvs:
            self.kv("Prev", kv)

    def get(self, r):
        self.hdr(r.header)
        for kv in r.kvs:
            self.kv("", kv)
        self.p(f'"More" : {_b(r.more)}')
        self.p(f'"Count" : {r.count}')

    def put(self, r):
        self.hdr(r.header)
        if r.HasField("prev_kv"):
            self.kv("Prev", r.prev_kv)

    def txn(self, r):
        self.hdr(r.header)
        self.p(f'"Succeeded" : {_b(r.succeeded)}')
        for op in r.responses:
            which = op.WhichOneof("response")
            if which == "response_delete_range":
                self.delete(op.response_delete_range)
            elif which == "response_put":
                self.put(op.response_put)
            elif which == "response_range":
                self.get(op.response_range)

    def watch(self, r):
        self.hdr(r.header)
        for e in r.events:
            self.p(f'"Type" : {"PUT" if e.type == 0 else "DELETE"}')
            if e.HasField("prev_kv"):
                self.kv("Prev", e.prev_kv)
            self.kv("", e.kv)

    def grant(self, r):
        self.hdr(r.header)
        self.p(f'"ID" : {r.ID}')
        self.p(f'"TTL" : {r.TTL}')

    def revoke(self, _id, r):
        self.hdr(r.header)

    keep_alive = grant

    def time_to_live(self, r, keys):
        self.hdr(r.header)
        self.p(f'"ID" : {r.ID}')
        self.p(f'"TTL" : {r.TTL}')
        self.p(f'"GrantedTTL" : {r.grantedTTL}')
        for k in r.keys:
            self.p(f'"Key" : {quote(k)}')

    def leases(self, r):
        self.hdr(r.header)
        for ls in r.leases:
            self.p(f'"ID" : {ls.ID}')

    def member_list(self, r):
        self.hdr(r.header)
        for m in r.members:
            self.p(f'"ID" : {m.ID}')
            self.p(f'"Name" : {quote(m.name)}')
            for u in m.peerURLs:
                self.p(f'"PeerURL" : {quote(u)}')
            for u in m.clientURLs:
                self.p(f'"ClientURL" : {quote(u)}')
            self.p(f'"IsLearner" : {_b(m.isLearner)}')
            self.p("")

    def endpoint_health(self, hs):
        for h in hs:
            self.p(f'"Endpoint" : {quote(h.ep)}')
            self.p(f'"Health" : {_b(h.health)}')
            self.p(f'"Took" : {h.took}')
            self.p(f'"Error" : {h.error}')
            self.p("")

    def endpoint_status(self, statuses):
        for ep, r in statuses:
            self.hdr(r.header)
            self.p(f'"Version" : {quote(r.version)}')
            self.p(f'"DBSize" : {r.dbSize}')
            self.p(f'"Leader" : {r.leader}')
            self.p(f'"IsLearner" : {_b(r.isLearner)}')
            self.p(f'"RaftIndex" : {r.raftIndex}')
            self.p(f'"RaftTerm" : {r.raftTerm}')
            self.p(f'"RaftAppliedIndex" : {r.raftAppliedIndex}')
            self.p(f'"Errors" : [{" ".join(r.errors)}]')
            self.p(f'"Endpoint" : {quote(ep)}')
            self.p("")

    def endpoint_hashkv(self, hashes):
        for ep, r in hashes:
            self.hdr(r.header)
            self.p(f'"Endpoint" : {quote(ep)}')
            self.p(f'"Hash" : {r.hash}')
            self.p("")

    def alarm(self, r):
        self.hdr(r.header)
        for a in r.alarms:
            self.p(f'"MemberID" : {a.memberID}')
            self.p(f'"AlarmType" : {_ALARM.get(a.alarm, a.alarm)}')
            self.p("")

    def db_status(self, ds):
        self.p(f'"Hash" : {ds.hash}')
        self.p(f'"Revision" : {ds.revision}')
        self.p(f'"Keys" : {ds.total_key}')
        self.p(f'"Size" : {ds.total_size}')

    def role_add(self, _role, r):
        self.hdr(r.header)

    role_delete = role_grant_permission = user_add = user_delete = role_add

    def role_get(self, _role, r):
        self.hdr(r.header)
        for p in r.perm:
            self.p(f'"PermType" :  {_PERM.get(p.permType, p.permType)}')
            self.p(f'"Key" : {quote(p.key)}')
            self.p(f'"RangeEnd" : {quote(p.range_end)}')

    def role_list(self, r):
        self.hdr(r.header)
        sys.stdout.write('"Roles" :' + "".join(f" {quote(x)}" for x in r.roles) + "\n")

    def role_revoke_permission(self, _role, _k, _e, r):
        self.hdr(r.header)

    def user_change_password(self, r):
        self.hdr(r.header)

    def user_grant_role(self, _u, _r, r):
        self.hdr(r.header)

    user_revoke_role = user_grant_role
