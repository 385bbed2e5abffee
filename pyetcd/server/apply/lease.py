"""Lease requests applied on every member, in log order (etcd's applierV3 LeaseGrant/Revoke/Checkpoint).

How to wire (server owner; pyetcd/server/member.py and main.py):

    # EtcdServer.open(), after self.kv = KVStore(self.backend):
    from pyetcd.lease import Lessor, min_lease_ttl, request_timeout
    from .apply.lease import LeaseApplier
    cfg = self.cfg
    self.lessor = Lessor(self.backend, min_ttl=min_lease_ttl(cfg.heartbeat_interval, cfg.election_timeout),
                         now=time.monotonic, checkpointing=cfg.experimental_enable_lease_checkpoint,
                         expired_retry_interval=request_timeout(cfg.election_timeout), logger=self.lg)
    self.lessor.recover(self.kv)              # before the WAL replay: leases + key attachments
    self.lease_applier = LeaseApplier(self.lessor, self.kv)
    self.applier = KVApplier(self.kv, lease_exists=self.lessor.exists)
    #   ... and KVApplier calls, after each tw.put / tw.delete_range (top level and in txns):
    #       self.lease_applier.attach_put(prev_kv, key, lease)   # prev_kv = tw.put(...)'s return
    #       self.lease_applier.detach_delete(prevs)              # prevs = tw.delete_range(...)'s return
    #   (e.g. KVApplier(..., on_put=la.attach_put, on_delete=la.detach_delete)).

    # EtcdServer._campaign(), after applying the term's empty entry (etcd promotes once the
    # leader has applied its first entry; extend = the election timeout):
    self.lessor.promote(self.cfg.election_timeout / 1000)

    # EtcdServer._apply_request():
    elif which == "lease_grant":      return self.lease_applier.grant(r.lease_grant)
    elif which == "lease_revoke":     resp, events = self.lease_applier.revoke(r.lease_revoke)
                                      # then fan `events` out to event_listeners, as for KV
    elif which == "lease_checkpoint": return self.lease_applier.checkpoint(r.lease_checkpoint)

    # EtcdServer.start():
    from pyetcd.api.lease import run_expiry
    self._tasks.append(asyncio.create_task(run_expiry(self, self.lessor), name="lease-expiry"))

    # main.py: LeaseService from pyetcd.api.lease (not api.pending); drop it from pending.py.

Errors (same as etcd): grant of an existing ID -> ErrLeaseExist; TTL above 9e9 -> ErrLeaseTTLTooLarge;
revoke of an unknown ID -> ErrLeaseNotFound. A failed apply still consumes its log index.
"""
from __future__ import annotations

from pyetcd import errors
from pyetcd.pb import rpc


class LeaseApplier:
    def __init__(self, lessor, kvstore, event_sink=None):
        """``event_sink``: optional callable(events), called with the deletions of each revoke
        that deleted something. revoke() also returns them; wire one or the other, not both."""
        self.lessor = lessor
        self.kv = kvstore
        self.event_sink = event_sink

    def grant(self, r):
        lease = self.lessor.grant(r.ID, r.TTL)
        resp = rpc.LeaseGrantResponse(ID=lease.id, TTL=lease.ttl)
        resp.header.revision = self.kv.rev
        return resp

    def revoke(self, r):
        """Delete every attached key in one write txn (one revision), then drop the lease.
        Returns (LeaseRevokeResponse, events)."""
        lessor = self.lessor
        lease = lessor.lookup(r.ID)
        if lease is None:
            raise errors.ErrLeaseNotFound
        keys = sorted(lease.keys)  # same order on every member, so backend hashes agree
        tw = self.kv.write()
        try:
            for k in keys:
                tw.delete_range(k)
            # The lease record goes in the same backend batch as the deletions (etcd: same txn).
            lessor.revoke(r.ID)
        finally:
            events = tw.end()
        resp = rpc.LeaseRevokeResponse()
        resp.header.revision = self.kv.rev
        if events and self.event_sink is not None:
            self.event_sink(events)
        return resp, events

    def checkpoint(self, r):
        for c in r.checkpoints:
            self.lessor.checkpoint(c.ID, c.remaining_TTL)
        resp = rpc.LeaseCheckpointResponse()
        resp.header.revision = self.kv.rev
        return resp

    # ---- hooks the KV applier calls, so attachment follows every write ----------------------
    def attach_put(self, prev_kv, key: bytes, lease: int) -> None:
        """After a put of ``key`` with ``lease`` (0 = none; with ignore_lease, the key's old
        lease): detach it from the lease it had, attach it to the new one (etcd's mvcc put)."""
        lessor = self.lessor
        old = lessor.get_lease(key)
        if old == 0 and prev_kv is not None:
            old = prev_kv.lease
        if old != 0 and old != lease and lessor.exists(old):
            lessor.detach(old, key)
        if lease != 0:
            if lessor.exists(lease):
                lessor.attach(lease, key)
            elif lessor.lg is not None:  # the KV applier checks first; never expected
                lessor.lg.error("put names an unknown lease", lease_id=f"{lease:x}")

    def detach_delete(self, prev_kvs) -> None:
        """After a delete: each deleted key leaves its lease."""
        lessor = self.lessor
        for kv in prev_kvs:
            old = lessor.get_lease(kv.key) or kv.lease
            if old != 0 and lessor.exists(old):
                lessor.detach(old, kv.key)
