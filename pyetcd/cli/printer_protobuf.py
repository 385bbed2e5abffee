"""`-w protobuf`: the response's wire bytes, written as etcdctl writes them (through Printf)."""
from __future__ import annotations

import sys

from pyetcd.cli import printer as P


class PBPrinter(P.Printer):
    fmt = "protobuf"

    def pb(self, m, *_a):
        sys.stdout.flush()
        sys.stdout.buffer.write(m.SerializeToString())

    def header_only(self, r, *_a):
        # clientv3's lease responses embed *ResponseHeader; its Marshal is what gets printed.
        self.pb(r.header)

    delete = get = put = txn = alarm = member_add = member_list = user_list = role_list = pb
    auth_status = user_change_password = pb
    grant = keep_alive = leases = header_only

    def revoke(self, _id, r):
        self.pb(r)

    def time_to_live(self, r, _keys):
        self.pb(r.header)

    def member_remove(self, _id, r):
        self.pb(r)

    member_update = member_promote = member_remove

    def role_add(self, _role, r):
        self.pb(r)

    role_get = role_delete = role_grant_permission = user_add = user_get = user_delete = role_add

    def role_revoke_permission(self, _role, _k, _e, r):
        self.pb(r)

    def user_grant_role(self, _u, _r, r):
        self.pb(r)

    user_revoke_role = user_grant_role

    def watch(self, r):
        # clientv3.WatchResponse converted back to the wire type: watch id and fragment dropped
        from pyetcd._pb.etcdserverpb import rpc_pb2 as rpc
        self.pb(rpc.WatchResponse(header=r.header, events=r.events, compact_revision=r.compact_revision,
                                  canceled=r.canceled, created=r.created))
        sys.stdout.flush()
