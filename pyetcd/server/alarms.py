"""Alarms and the backend space quota, as etcd 3.5.1 has them.

etcd (server/etcdserver/quota.go, apply.go, api/v3alarm/alarms.go, api/v3rpc/quota.go):

- An alarm is an ``AlarmMember`` (member id, alarm type). Alarms are raised and cleared only
  through the log (an ``AlarmRequest`` in the entry), so every member applies the same changes.
  The ``alarm`` bucket holds one key per alarm, the marshalled AlarmMember, with an empty value;
  the member store reads it back on start and after a snapshot replaced the backend.
- The quota: ``--quota-backend-bytes`` (0: 2 GiB; negative: no quota; above 8 GiB a warning).
  Before a Put, Txn (even a read-only one) or LeaseGrant is proposed, its cost is estimated
  (256 bytes + key + value per put; a txn costs the larger of its success and failure branches'
  top-level puts; a lease 64) and if backend size + cost reaches the quota, the member proposes
  a NOSPACE alarm in its own name and answers ``etcdserver: mvcc: database space exceeded``
  (RESOURCE_EXHAUSTED). Each member checks again when it applies such a request against its
  own backend: an over-quota request is still applied, but its client gets the same error, and
  when no NOSPACE alarm is active yet the member raises one first ("message exceeded backend
  quota; raising alarm").
- While NOSPACE is active the apply layer refuses puts, txns with puts and lease grants
  (applierV3Capped); a CORRUPT alarm refuses puts, deletes, write txns, compactions and lease
  grants/revokes (applierV3Corrupt). Ranges and read-only txns are served locally and never see
  these appliers. etcd swaps its applier only when an alarm type goes from no member to one
  member (raise) or back to none (clear); clearing either type restores the plain applier even if
  the other type is still active, and the capped/corrupt appliers leave out the quota check.
  ``AlarmState.capped``/``corrupt`` follow those swaps; a restart or a snapshot computes them
  afresh from the stored alarms, as etcd's restoreAlarms does.

Backend size: etcd compares bbolt's ``Size()``, the file's size including free pages, which only
a defragmentation gives back. pyetcd's equivalent is SQLite's page_count * page_size
(``Backend.size``; free pages included, VACUUM gives them back). The quota reads it once per
batch commit (``Backend.committed_size``), as bbolt's size moves only at batch commits.
"""
from __future__ import annotations

import asyncio

from pyetcd import errors
from pyetcd.pb import raft_internal, rpc
from pyetcd.storage.backend import ALARM

NONE, NOSPACE, CORRUPT = rpc.NONE, rpc.NOSPACE, rpc.CORRUPT
GET, ACTIVATE, DEACTIVATE = rpc.AlarmRequest.GET, rpc.AlarmRequest.ACTIVATE, rpc.AlarmRequest.DEACTIVATE

DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024   # etcd's DefaultQuotaBytes
MAX_QUOTA_BYTES = 8 * 1024 * 1024 * 1024       # etcd's MaxQuotaBytes (a warning, not a limit)
LEASE_OVERHEAD = 64
KV_OVERHEAD = 256

_ALARM_NAMES = {NONE: "NONE", NOSPACE: "NOSPACE", CORRUPT: "CORRUPT"}


def alarm_name(t: int) -> str:
    return _ALARM_NAMES.get(t, str(t))


def alarm_text(m) -> str:
    """Go's proto CompactTextString of an AlarmMember, as etcd puts it in Status.errors (zero
    fields left out, a space after each field): ``memberID:9372538179322589801 alarm:NOSPACE ``."""
    out = f"memberID:{m.memberID} " if m.memberID else ""
    return out + (f"alarm:{alarm_name(m.alarm)} " if m.alarm else "")


# ---- the quota ---------------------------------------------------------------------------------

def _cost_put(p) -> int:
    return KV_OVERHEAD + len(p.key) + len(p.value)


def _cost_ops(ops) -> int:
    return sum(_cost_put(op.request_put) for op in ops if op.WhichOneof("request") == "request_put")


def cost(req) -> int:
    """etcd's quota cost of a request; nested txns count nothing (etcd looks at the top level)."""
    if isinstance(req, rpc.PutRequest):
        return _cost_put(req)
    if isinstance(req, rpc.TxnRequest):
        return max(_cost_ops(req.success), _cost_ops(req.failure))
    if isinstance(req, rpc.LeaseGrantRequest):
        return LEASE_OVERHEAD
    raise TypeError(f"no quota cost for {type(req).__name__}")


class BackendQuota:
    """available(req): backend size + cost(req) < limit. limit None: no quota (etcd's
    passthroughQuota, for a negative --quota-backend-bytes)."""

    def __init__(self, limit: int | None, size):
        self.limit = limit
        self._size = size  # () -> int, the backend's current size in bytes

    def available(self, req) -> bool:
        if self.limit is None:
            return True
        return self._size() + cost(req) < self.limit

    def remaining(self) -> int:
        return 1 if self.limit is None else self.limit - self._size()


_quota_logged = False


def new_backend_quota(quota_bytes: int, size, lg, name: str = "v3-applier") -> BackendQuota:
    """The quota for --quota-backend-bytes, logged once per process as etcd logs it."""
    global _quota_logged
    from pyetcd.cli.goutil import humanize_bytes

    first, _quota_logged = not _quota_logged, True
    if quota_bytes < 0:
        if first:
            lg.info("disabled backend quota", **{"quota-name": name, "quota-size-bytes": quota_bytes})
        return BackendQuota(None, size)
    if quota_bytes == 0:
        if first:
            lg.info("enabled backend quota with default value", **{
                "quota-name": name, "quota-size-bytes": DEFAULT_QUOTA_BYTES,
                "quota-size": humanize_bytes(DEFAULT_QUOTA_BYTES)})
        return BackendQuota(DEFAULT_QUOTA_BYTES, size)
    if first:
        if quota_bytes > MAX_QUOTA_BYTES:
            lg.warn("quota exceeds the maximum value", **{
                "quota-name": name, "quota-size-bytes": quota_bytes, "quota-size": humanize_bytes(quota_bytes),
                "quota-maximum-size-bytes": MAX_QUOTA_BYTES, "quota-maximum-size": humanize_bytes(MAX_QUOTA_BYTES)})
        lg.info("enabled backend quota", **{
            "quota-name": name, "quota-size-bytes": quota_bytes, "quota-size": humanize_bytes(quota_bytes)})
    return BackendQuota(quota_bytes, size)


def nospace_request(member_id: int):
    return raft_internal.InternalRaftRequest(
        alarm=rpc.AlarmRequest(memberID=member_id, action=ACTIVATE, alarm=NOSPACE))


async def refuse_over_quota(server) -> None:
    """The request does not fit: raise NOSPACE in this member's name through the log (whatever
    that answers, as etcd's quotaAlarmer), then refuse the request. Callers test
    ``server.quota.available(req)`` first, so the common path costs no coroutine."""
    try:
        await server.propose(nospace_request(server.member_id))
    except Exception:  # noqa: BLE001 - etcd ignores the alarm proposal's outcome here
        pass
    raise errors.ErrNoSpace


# ---- the alarm store and the appliers it selects -------------------------------------------------

# Requests the capped / corrupt appliers refuse (etcd's applierV3Capped, applierV3Corrupt).
_CORRUPT_REFUSES = frozenset(("put", "delete_range", "txn", "compaction", "lease_grant", "lease_revoke"))
QUOTA_REQUESTS = frozenset(("put", "txn", "lease_grant"))


class AlarmState:
    """The alarms of the cluster as this member has applied them, kept in the ``alarm`` bucket."""

    def __init__(self, backend, lg=None):
        self.backend = backend
        self.lg = lg
        self._types: dict[int, dict[int, object]] = {}
        for k, _ in backend.range(ALARM):
            self._add(rpc.AlarmMember.FromString(k))
        # etcd's restoreAlarms: the capped applier under the corrupt one when both are stored.
        self.capped = bool(self._types.get(NOSPACE))
        self.corrupt = bool(self._types.get(CORRUPT))

    def _add(self, m):
        members = self._types.setdefault(m.alarm, {})
        return members.setdefault(m.memberID, m)

    def get(self, alarm: int = NONE) -> list:
        """Alarms of one type (NONE: all), by type then member id (etcd: Go map order)."""
        if alarm == NONE:
            return [m for t in sorted(self._types) for _, m in sorted(self._types[t].items())]
        return [m for _, m in sorted(self._types.get(alarm, {}).items())]

    def active(self, alarm: int) -> bool:
        return bool(self._types.get(alarm))

    def activate(self, member_id: int, alarm: int):
        m = rpc.AlarmMember(memberID=member_id, alarm=alarm)
        got = self._add(m)
        if got is m:
            self.backend.put(ALARM, m.SerializeToString(), b"")
        return got

    def deactivate(self, member_id: int, alarm: int):
        m = self._types.get(alarm, {}).pop(member_id, None)
        if m is not None:
            self.backend.delete(ALARM, m.SerializeToString())
        return m

    # -- apply -----------------------------------------------------------------------------------
    def apply(self, ar):
        """An AlarmRequest from the log (etcd's applierV3backend.Alarm)."""
        resp = rpc.AlarmResponse()
        old = len(self._types.get(ar.alarm, {})) if ar.alarm != NONE else len(self.get())
        if ar.action == GET:
            resp.alarms.extend(self.get(ar.alarm))
        elif ar.action == ACTIVATE:
            m = self.activate(ar.memberID, ar.alarm)
            resp.alarms.append(m)
            if old == 0 and len(self.get(m.alarm)) == 1:
                self._log("warn", "alarm raised", m)
                if m.alarm == CORRUPT:
                    self.corrupt, self.capped = True, False
                elif m.alarm == NOSPACE:
                    self.capped, self.corrupt = True, False
                else:
                    self._log("warn", "unimplemented alarm activation", m)
        elif ar.action == DEACTIVATE:
            m = self.deactivate(ar.memberID, ar.alarm)
            if m is not None:
                resp.alarms.append(m)
                if old > 0 and not self.get(ar.alarm):
                    if m.alarm in (NOSPACE, CORRUPT):
                        self._log("warn", "alarm disarmed", m)
                        self.capped = self.corrupt = False
                    else:
                        self._log("warn", "unimplemented alarm deactivation", m)
        return resp

    def _log(self, level: str, msg: str, m) -> None:
        if self.lg is not None:
            getattr(self.lg, level)(msg, alarm=alarm_name(m.alarm), **{"from": f"{m.memberID:x}"})

    def before_apply(self, which: str | None, r, quota: BackendQuota | None) -> bool:
        """Refuse what the capped or corrupt applier refuses; otherwise return whether the
        request is over the quota (it is then applied, and answered with NOSPACE)."""
        if self.corrupt:
            if which in _CORRUPT_REFUSES:
                raise errors.ErrCorrupt
            return False
        if self.capped:
            if which == "put" or which == "lease_grant" or (which == "txn" and cost(r.txn) > 0):
                raise errors.ErrNoSpace
            return False
        if quota is None or which not in QUOTA_REQUESTS:
            return False
        return not quota.available(getattr(r, which))

    def status_errors(self) -> list[str]:
        return [alarm_text(m) for m in self.get()]


def raise_nospace_then(server, quota_bytes: int, lg, done) -> bool:
    """etcd's applyEntryNormal on an over-quota apply with no NOSPACE alarm yet: log, propose the
    alarm in this member's name, and only then answer the client (``done()``). Returns False
    when there is no event loop to do it on (the caller answers at once)."""
    from pyetcd.cli.goutil import humanize_bytes

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    lg.warn("message exceeded backend quota; raising alarm", **{
        "quota-size-bytes": quota_bytes, "quota-size": humanize_bytes(max(quota_bytes, 0)),
        "error": "mvcc: database space exceeded"})  # etcdserver.ErrNoSpace (gRPC adds "etcdserver: ")

    async def run():
        try:
            await server.propose(nospace_request(server.member_id))
        except Exception:  # noqa: BLE001 - as etcd, the client is answered whatever happened
            pass
        finally:
            done()

    task = loop.create_task(run(), name="raise-nospace")
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    return True


_pending: set = set()
