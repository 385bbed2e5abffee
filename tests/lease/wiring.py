"""A reference wiring of leases into the server, for tests only, until member.py/main.py do it.

``hook_kv_applier(kv_applier, lease_applier)`` makes every put and delete a KVApplier applies
(top level or inside a txn) call the lease hooks, by wrapping the store's write txns.

Run as a script (``python tests/lease/wiring.py <etcd flags>``) it starts ``pyetcd`` with the
lease hooks patched in, exactly as the docstring of pyetcd/server/apply/lease.py asks the
server owner to wire them. The integration tests use it only when PYETCD_LEASE_SHIM=1 and the
Lease service is still a stub; once the server is wired they run against plain ``pyetcd``.
"""
from __future__ import annotations

import os
import sys
import time

if __name__ == "__main__":  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class _HookedTxn:
    def __init__(self, tw, la):
        self._tw = tw
        self._la = la

    def put(self, key, value, lease=0, **kw):
        prev = self._tw.put(key, value, lease, **kw)
        self._la.attach_put(prev, key, lease)
        return prev

    def delete_range(self, key, end=b""):
        prevs = self._tw.delete_range(key, end)
        self._la.detach_delete(prevs)
        return prevs

    def __getattr__(self, name):
        return getattr(self._tw, name)


class _HookedStore:
    def __init__(self, store, la):
        self._store = store
        self._la = la

    def write(self):
        return _HookedTxn(self._store.write(), self._la)

    def __getattr__(self, name):
        return getattr(self._store, name)


def hook_kv_applier(kv_applier, lease_applier) -> None:
    kv_applier.store = _HookedStore(kv_applier.store, lease_applier)


def patch_server() -> None:
    """Patch EtcdServer and the service table the way the wiring docstring describes."""
    import asyncio

    from pyetcd.api import lease as api_lease
    from pyetcd.api import pending
    from pyetcd.lease import Lessor, min_lease_ttl, request_timeout
    from pyetcd.server import member
    from pyetcd.server.apply.kv import KVApplier
    from pyetcd.server.apply.lease import LeaseApplier

    current = {}
    orig_open = member.EtcdServer.open
    orig_campaign = member.EtcdServer._campaign
    orig_apply = member.EtcdServer._apply_request
    orig_start = member.EtcdServer.start

    def make_applier(kv):
        srv = current["server"]
        cfg = srv.cfg
        lessor = Lessor(kv.be, min_ttl=min_lease_ttl(cfg.heartbeat_interval, cfg.election_timeout),
                        now=time.monotonic, checkpointing=cfg.experimental_enable_lease_checkpoint,
                        expired_retry_interval=request_timeout(cfg.election_timeout), logger=srv.lg)
        lessor.recover(kv)
        srv.lessor = lessor
        srv.lease_applier = LeaseApplier(lessor, kv)
        ka = KVApplier(kv, lease_exists=lessor.exists)
        hook_kv_applier(ka, srv.lease_applier)
        return ka

    def open_(self):
        current["server"] = self
        return orig_open(self)

    def campaign(self):
        orig_campaign(self)
        self.lessor.promote(self.cfg.election_timeout / 1000)

    def apply_request(self, r):
        which = r.WhichOneof("request")
        if which == "lease_grant":
            return self.lease_applier.grant(r.lease_grant)
        if which == "lease_checkpoint":
            return self.lease_applier.checkpoint(r.lease_checkpoint)
        if which == "lease_revoke":
            resp, events = self.lease_applier.revoke(r.lease_revoke)
            if events:
                for listener in self.event_listeners:
                    listener(events)
            return resp
        return orig_apply(self, r)

    def start(self):
        orig_start(self)
        self._tasks.append(asyncio.create_task(api_lease.run_expiry(self, self.lessor), name="lease-expiry"))

    member.KVApplier = make_applier
    member.EtcdServer.open = open_
    member.EtcdServer._campaign = campaign
    member.EtcdServer._apply_request = apply_request
    member.EtcdServer.start = start
    pending.LeaseService = api_lease.LeaseService


def lease_service_stubbed() -> bool:
    """True while the server still serves the UNIMPLEMENTED Lease stub from api/pending.py."""
    from pyetcd.api import pending

    cls = getattr(pending, "LeaseService", None)
    return cls is not None and cls.__module__ == "pyetcd.api.pending"


if __name__ == "__main__":
    patch_server()
    from pyetcd.server.main import main

    main(sys.argv[1:])
