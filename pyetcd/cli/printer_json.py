"""`-w json`: Go's json.Marshal of the response, as etcdctl prints it."""
from __future__ import annotations

import sys

from pyetcd.cli import gojson as J
from pyetcd.cli import printer as P


class JSONPrinter(P.Printer):
    fmt = "json"

    def line(self, s: str) -> None:
        sys.stdout.write(s + "\n")

    def pb(self, r, *_a):
        self.line(J.message(r))

    def _hdr_plus(self, r, extra):
        self.line("{" + ",".join(J.header_fields(r) + [f"{J.go_string(k)}:{v}" for k, v in extra]) + "}")

    delete = get = put = txn = alarm = auth_status = user_list = role_list = pb
    member_add = member_list_plain = pb

    def member_remove(self, _id, r):
        self.pb(r)

    member_update = member_promote = member_remove

    def revoke(self, _id, r):
        self.pb(r)

    def move_leader(self, _l, _t, r):
        self.pb(r)

    def role_add(self, _role, r):
        self.pb(r)

    role_get = role_delete = role_grant_permission = user_add = user_get = user_delete = role_add

    def role_revoke_permission(self, _role, _k, _e, r):
        self.pb(r)

    def user_change_password(self, r):
        self.pb(r)

    def user_grant_role(self, _u, _r, r):
        self.pb(r)

    user_revoke_role = user_grant_role

    def grant(self, r):
        self._hdr_plus(r, [("ID", str(r.ID)), ("TTL", str(r.TTL)), ("Error", J.go_string(r.error))])

    def keep_alive(self, r):
        self._hdr_plus(r, [("ID", str(r.ID)), ("TTL", str(r.TTL))])

    def time_to_live(self, r, keys):
        ks = "[" + ",".join(J._scalar(r.DESCRIPTOR.fields_by_name["keys"], k) for k in r.keys) + "]" \
            if len(r.keys) else "null"
        self._hdr_plus(r, [("id", str(r.ID)), ("ttl", str(r.TTL)), ("granted-ttl", str(r.grantedTTL)),
                           ("keys", ks)])

    def leases(self, r):
        self._hdr_plus(r, [("leases", "[" + ",".join(f'{{"id":{x.ID}}}' for x in r.leases) + "]")])

    def watch(self, r):
        events = "[" + ",".join(J.message(e) for e in r.events) + "]" if len(r.events) else \
            ("[]" if r.canceled else "null")
        self.line(J.obj([("Header", J.message(r.header)), ("Events", events),
                         ("CompactRevision", str(r.compact_revision)),
                         ("Canceled", "true" if r.canceled else "false"),
                         ("Created", "true" if r.created else "false")]))

    def member_list(self, r):
        if not self.is_hex:
            self.pb(r)
            return
        h = r.header
        s = f'{{"header":{{"cluster_id":"{h.cluster_id:x}","member_id":"{h.member_id:x}","raft_term":{h.raft_term}'
        for i, m in enumerate(r.members):
            s += '},"members":[{"ID":"' if i == 0 else ',{"ID":"'
            s += (f'{m.ID:x}","name":"{m.name}","peerURLs":' + _strs(m.peerURLs)
                  + ',"clientURLS":' + _strs(m.clientURLs) + "}")
            if i == len(r.members) - 1:
                s += "]}"
        self.line(s)

    def endpoint_health(self, hs):
        items = []
        for h in hs:
            pairs = [("endpoint", J.go_string(h.ep)), ("health", "true" if h.health else "false"),
                     ("took", J.go_string(h.took))]
            if h.error:
                pairs.append(("error", J.go_string(h.error)))
            items.append(J.obj(pairs))
        self.line("[" + ",".join(items) + "]")

    def endpoint_status(self, statuses):
        self.line("[" + ",".join(J.obj([("Endpoint", J.go_string(ep)), ("Status", J.message(r))])
                                 for ep, r in statuses) + "]")

    def endpoint_hashkv(self, hashes):
        self.line("[" + ",".join(J.obj([("Endpoint", J.go_string(ep)), ("HashKV", J.message(r))])
                                 for ep, r in hashes) + "]")

    def db_status(self, ds):
        self.line(J.obj([("hash", str(ds.hash)), ("revision", str(ds.revision)),
                         ("totalKey", str(ds.total_key)), ("totalSize", str(ds.total_size))]))


def _strs(xs) -> str:
    return "[" + ",".join(J.go_string(x) for x in xs) + "]" if len(xs) else "null"
