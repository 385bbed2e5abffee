"""The lessor: leases, their expiry, and their remaining-TTL checkpoints (etcd server/lease).

Pure logic. Time comes from an injected ``now()`` (monotonic seconds) and the only I/O is the
optional backend, so the whole state machine can be driven from a test without sleeping.

Roles (etcd's "primary lessor"). Only the Raft leader manages expiry. A lessor starts as a
follower ("demoted"): every lease it holds has expiry = forever, so nothing expires and
renew() refuses. ``promote(extend)`` makes it primary: each lease's expiry becomes
now + extend + (checkpointed remaining TTL, or the full TTL), and the expiry heap is filled.
``demote()`` goes back to forever and empties the heaps. A server promotes after applying the
first (empty) entry of its own term, with extend = the election timeout, as etcd 3.5 does.

Restart (what etcd 3.5.1 does, and what this lessor does). The lease bucket holds ID, TTL and
remaining TTL. On start the leases are loaded with expiry = forever; ``promote`` then gives
each one ``extend + remaining`` where remaining is the stored remaining TTL if non-zero, else
the full TTL. In etcd 3.5.1 a checkpoint updates the remaining TTL in memory only (persisting
it came with 3.5.2/3.5.3's --experimental-enable-lease-checkpoint-persist), and grants store
remaining = 0. So after a restart every lease starts over at its full TTL (+ the election
timeout), with checkpointing on or off. Checkpoints matter for a *leader change*: every member
applies them, so the new leader promotes with the checkpointed remaining TTL instead of the
full TTL. ``checkpoint_persist=True`` gives 3.5.3's opt-in behaviour (checkpoints are written to
the bucket, so they also survive a restart).

Expiry. An expired lease is not removed here: the primary offers it (``expired()``) and the
server proposes a LeaseRevoke through Raft, so every member deletes the attached keys at the
same revision. An offered lease is re-offered only after ``expired_retry_interval`` (etcd uses
the request timeout, 5 s + 2 x election timeout), in case the revoke got lost.

Invariants:
  - ``_leases[id].keys`` and ``_items`` agree: key in lease.keys <=> _items[key] == id.
  - ``primary`` is False <=> every lease has expiry == FOREVER and both heaps are empty.
  - an expiry heap entry (t, seq, id) is live iff ``_exp_reg.get(id) == (t, seq)``; others
    are stale and skipped (lazy deletion); the heap is rebuilt when stale entries dominate.
"""
from __future__ import annotations

import heapq
import itertools
import math
import struct
import time
from typing import Callable, Iterable

from pyetcd import errors

MAX_LEASE_TTL = 9_000_000_000            # etcd lease.MaxLeaseTTL (seconds)
FOREVER = math.inf
REVOKE_RATE = 1000                       # etcd leaseRevokeRate: leases revoked per second at most
MAX_CHECKPOINT_BATCH = 1000              # etcd maxLeaseCheckpointBatchSize
DEFAULT_CHECKPOINT_INTERVAL = 300.0      # etcd defaultLeaseCheckpointInterval (5 min)
DEFAULT_EXPIRED_RETRY_INTERVAL = 3.0     # etcd defaultExpiredleaseRetryInterval
LEASE_BUCKET = "lease"

# Bucket value: ID, TTL, remaining TTL as three big-endian signed 64-bit integers (24 bytes).
# Key: the ID as 8 bytes big-endian two's complement (etcd's int64ToBytes), so ids sort as
# unsigned 64-bit numbers, as in etcd's bbolt bucket.
_REC = struct.Struct(">qqq")
_ID = struct.Struct(">q")


class NotPrimaryError(Exception):
    """renew() on a lessor that is not the primary (etcd's lease.ErrNotPrimary): forward it."""


class LeaseExpiredError(Exception):
    """renew() of a lease that has expired but is not revoked yet: the caller waits for the
    revoke (the lease then is not found) or for a demotion, as etcd's Renew does."""


def min_lease_ttl(heartbeat_ms: int, election_ms: int) -> int:
    """etcd's minimum TTL: ceil(1.5 election timeouts) in whole seconds, computed as etcd does,
    in ticks: (3 * election_ticks / 2) heartbeats (integer division), rounded up to seconds."""
    ticks = election_ms // heartbeat_ms
    return math.ceil(((3 * ticks) // 2) * heartbeat_ms / 1000)


def request_timeout(election_ms: int) -> float:
    """etcd's ReqTimeout (5 s + 2 election timeouts), its retry interval for expired leases."""
    return 5.0 + 2 * election_ms / 1000


def encode_lease(lease_id: int, ttl: int, remaining_ttl: int) -> tuple[bytes, bytes]:
    return _ID.pack(lease_id), _REC.pack(lease_id, ttl, remaining_ttl)


def decode_lease(value: bytes) -> tuple[int, int, int]:
    return _REC.unpack(value)


class Lease:
    """One lease. ``expiry`` is a ``now()`` time, FOREVER while the lessor is not primary."""

    __slots__ = ("id", "ttl", "remaining_ttl", "expiry", "keys")

    def __init__(self, lease_id: int, ttl: int, remaining_ttl: int = 0):
        self.id = lease_id
        self.ttl = ttl                       # granted TTL, seconds (already raised to the minimum)
        self.remaining_ttl = remaining_ttl   # last checkpointed remaining TTL; 0 = unset
        self.expiry = FOREVER
        self.keys: set[bytes] = set()

    def effective_remaining_ttl(self) -> int:
        """The TTL a refresh starts from: the checkpointed remaining TTL if set, else the TTL."""
        return self.remaining_ttl if self.remaining_ttl > 0 else self.ttl

    def remaining(self, now: float) -> float:
        return self.expiry - now

    def expired(self, now: float) -> bool:
        return self.expiry - now <= 0

    def __repr__(self) -> str:
        return f"Lease({self.id:x}, ttl={self.ttl}, remaining_ttl={self.remaining_ttl}, expiry={self.expiry})"


class Lessor:
    def __init__(self, backend=None, *, min_ttl: int = 0, now: Callable[[], float] = time.monotonic,
                 checkpointing: bool = False, checkpoint_interval: float = DEFAULT_CHECKPOINT_INTERVAL,
                 expired_retry_interval: float = DEFAULT_EXPIRED_RETRY_INTERVAL,
                 checkpoint_persist: bool = False, logger=None):
        self.be = backend
        self.min_ttl = min_ttl
        self.now = now
        self.checkpointing = checkpointing      # etcd: a Checkpointer is set
        self.checkpoint_interval = checkpoint_interval
        self.expired_retry_interval = expired_retry_interval
        self.checkpoint_persist = checkpoint_persist
        self.lg = logger
        self.primary = False
        self._leases: dict[int, Lease] = {}
        self._items: dict[bytes, int] = {}
        self._seq = itertools.count()
        self._exp_heap: list = []
        self._exp_reg: dict[int, tuple[float, int]] = {}
        self._cp_heap: list = []
        self._cp_reg: dict[int, tuple[float, int]] = {}

    # ---- persistence ---------------------------------------------------------------------
    def _persist(self, lease: Lease) -> None:
        if self.be is not None:
            k, v = encode_lease(lease.id, lease.ttl, lease.remaining_ttl)
            self.be.put(LEASE_BUCKET, k, v)

    def recover(self, kvstore=None) -> None:
        """Load the leases from the backend (expiry forever, until promoted) and re-attach every
        live key that names a lease (etcd rebuilds lease items from the key-value store)."""
        self._leases.clear()
        self._items.clear()
        self._clear_heaps()
        self.primary = False
        if self.be is not None:
            for _, v in self.be.range(LEASE_BUCKET, b"", None):
                lid, ttl, rem = decode_lease(v)
                self._leases[lid] = Lease(lid, max(ttl, self.min_ttl), rem)
        if kvstore is not None:
            self.attach_from_kv(kvstore)

    def attach_from_kv(self, kvstore, chunk: int = 1000, use_restored: bool = True) -> int:
        """Attach each live key to the lease in its ``lease`` field; returns how many.

        Uses the store's ``restored_leases`` (key -> lease, gathered while it rebuilt its index
        on open, as etcd's keyToLease) when it has one, so call this right after opening the
        store, before any write; otherwise (or with use_restored=False) scans the live keys."""
        restored = getattr(kvstore, "restored_leases", None) if use_restored else None
        if isinstance(restored, dict):
            return sum(self._attach_recovered(k, lid) for k, lid in restored.items())
        start, n = b"\x00", 0
        while True:
            rr = kvstore.range(start, b"\x00", limit=chunk)
            for kv in rr.kvs:
                if kv.lease != 0:
                    n += self._attach_recovered(kv.key, kv.lease)
            if len(rr.kvs) < chunk:
                return n
            start = rr.kvs[-1].key + b"\x00"

    def _attach_recovered(self, key: bytes, lease_id: int) -> bool:
        lease = self._leases.get(lease_id)
        if lease is None:
            self._warn("unknown lease to attach", lease_id=f"{lease_id:x}", key=key.decode(errors="replace"))
            return False
        lease.keys.add(key)
        self._items[key] = lease_id
        return True

    # ---- grant / revoke / checkpoint (applied on every member, in log order) ---------------
    def grant(self, lease_id: int, ttl: int) -> Lease:
        if lease_id == 0:
            raise errors.ErrLeaseNotFound
        if ttl > MAX_LEASE_TTL:
            raise errors.ErrLeaseTTLTooLarge
        if lease_id in self._leases:
            raise errors.ErrLeaseExist
        lease = Lease(lease_id, max(ttl, self.min_ttl))
        self._leases[lease_id] = lease
        self._persist(lease)
        if self.primary:
            self._refresh(lease, 0.0, self.now())
            self._schedule_checkpoint(lease)
        return lease

    def revoke(self, lease_id: int) -> list[bytes]:
        """Drop the lease and its bucket record; returns its keys, sorted (the caller deletes
        them, in this order, in the same write txn, as etcd does so that hashes agree)."""
        lease = self._leases.pop(lease_id, None)
        if lease is None:
            raise errors.ErrLeaseNotFound
        keys = sorted(lease.keys)
        for k in keys:
            if self._items.get(k) == lease_id:
                del self._items[k]
        lease.keys = set()
        self._exp_reg.pop(lease_id, None)
        self._cp_reg.pop(lease_id, None)
        if self.be is not None:
            self.be.delete(LEASE_BUCKET, _ID.pack(lease_id))
        return keys

    def checkpoint(self, lease_id: int, remaining_ttl: int) -> None:
        """Record a lease's remaining TTL (a LeaseCheckpoint entry). Unknown leases are ignored,
        as etcd ignores them; promote() applies the value to the expiry."""
        lease = self._leases.get(lease_id)
        if lease is None:
            return
        lease.remaining_ttl = remaining_ttl
        if self.checkpoint_persist:
            self._persist(lease)
        if self.primary:
            self._schedule_checkpoint(lease)

    # ---- renew and reads (leader-local) ---------------------------------------------------
    def renew(self, lease_id: int) -> int:
        """Restart the lease's TTL; returns the TTL. Raises NotPrimaryError, ErrLeaseNotFound,
        or LeaseExpiredError (expired but not yet revoked: wait for the revoke)."""
        if not self.primary:
            raise NotPrimaryError()
        lease = self._leases.get(lease_id)
        if lease is None:
            raise errors.ErrLeaseNotFound
        now = self.now()
        if lease.expired(now):
            raise LeaseExpiredError()
        self._refresh(lease, 0.0, now)
        return lease.ttl

    def renew_needs_checkpoint_clear(self, lease_id: int) -> bool:
        """etcd's Renew first proposes a checkpoint of remaining TTL 0 when checkpointing is on
        and a remaining TTL is set, so a later leader starts the renewed lease at its full TTL."""
        lease = self._leases.get(lease_id)
        return self.checkpointing and lease is not None and lease.remaining_ttl > 0

    def lookup(self, lease_id: int) -> Lease | None:
        return self._leases.get(lease_id)

    def exists(self, lease_id: int) -> bool:
        return lease_id in self._leases

    def __len__(self) -> int:
        return len(self._leases)

    def leases(self) -> list[Lease]:
        """All leases, soonest expiry first (etcd's Leases())."""
        return sorted(self._leases.values(), key=lambda lease: lease.expiry)

    def time_to_live(self, lease_id: int) -> tuple[int, int, list[bytes]]:
        """(remaining TTL, granted TTL, attached keys sorted). The remaining TTL is truncated
        toward zero, as etcd's int64(Remaining().Seconds()): 0 in the last second, negative
        once expired but not yet revoked."""
        lease = self._leases.get(lease_id)
        if lease is None:
            raise errors.ErrLeaseNotFound
        rem = lease.remaining(self.now())
        ttl = int(rem) if rem != FOREVER else (2**63 - 1) // 10**9
        return ttl, lease.ttl, sorted(lease.keys)

    # ---- key attachment ------------------------------------------------------------------
    def attach(self, lease_id: int, key: bytes) -> None:
        lease = self._leases.get(lease_id)
        if lease is None:
            raise errors.ErrLeaseNotFound
        lease.keys.add(key)
        self._items[key] = lease_id

    def detach(self, lease_id: int, key: bytes) -> None:
        lease = self._leases.get(lease_id)
        if lease is None:
            raise errors.ErrLeaseNotFound
        lease.keys.discard(key)
        if self._items.get(key) == lease_id:
            del self._items[key]

    def get_lease(self, key: bytes) -> int:
        """The lease a key is attached to, 0 if none."""
        return self._items.get(key, 0)

    # ---- primary / follower --------------------------------------------------------------
    def promote(self, extend: float) -> None:
        """Become the primary: every lease expires ``extend`` seconds after its remaining TTL
        from now. With REVOKE_RATE leases or more, expiries that pile up in one second are
        spread out as etcd's Promote does, so revocations stay under the revoke rate."""
        now = self.now()
        self.primary = True
        self._clear_heaps()
        for lease in self._leases.values():
            self._refresh(lease, extend, now)
            self._schedule_checkpoint(lease)
        if len(self._leases) < REVOKE_RATE:
            return
        leases = sorted(self._leases.values(), key=lambda lease: lease.expiry)
        base = leases[0].remaining(now)
        next_window = base + 1.0
        expires = 0
        target = (3 * REVOKE_RATE) // 4
        for lease in leases:
            rem = lease.remaining(now)
            if rem > next_window:
                base = rem
                next_window = base + 1.0
                expires = 1
                continue
            expires += 1
            if expires <= target:
                continue
            delay = expires / target - (rem - base)
            next_window = base + delay
            self._refresh(lease, delay + extend, now)
            self._schedule_checkpoint(lease)

    def demote(self) -> None:
        for lease in self._leases.values():
            lease.expiry = FOREVER
        self._clear_heaps()
        self.primary = False

    # ---- expiry and checkpoint schedules (primary only) -----------------------------------
    def expired(self, now: float | None = None, limit: int = REVOKE_RATE // 2) -> list[Lease]:
        """Leases whose expiry has passed, at most ``limit``. Each is re-offered only after
        ``expired_retry_interval`` (until it is revoked), as etcd's findExpiredLeases."""
        if not self.primary:
            return []
        now = self.now() if now is None else now
        out: list[Lease] = []
        heap = self._exp_heap
        while heap and len(out) < limit:
            t, seq, lid = heap[0]
            if self._exp_reg.get(lid) != (t, seq):
                heapq.heappop(heap)
                continue
            lease = self._leases.get(lid)
            if lease is None:
                heapq.heappop(heap)
                del self._exp_reg[lid]
                continue
            if now < t:
                break
            heapq.heappop(heap)
            self._register_expiry(lid, now + self.expired_retry_interval)
            if lease.expired(now):
                out.append(lease)
        return out

    def due_checkpoints(self, now: float | None = None,
                        limit: int = MAX_CHECKPOINT_BATCH) -> list[tuple[int, int]]:
        """(id, remaining TTL) of leases whose checkpoint is due, at most ``limit``: the remaining
        TTL rounded up to seconds; leases already expired or still at their full TTL skipped."""
        if not (self.primary and self.checkpointing):
            return []
        now = self.now() if now is None else now
        out: list[tuple[int, int]] = []
        heap = self._cp_heap
        while heap and len(out) < limit:
            t, seq, lid = heap[0]
            if t > now:
                break
            heapq.heappop(heap)
            if self._cp_reg.get(lid) != (t, seq):
                continue
            del self._cp_reg[lid]
            lease = self._leases.get(lid)
            if lease is None or not now < lease.expiry:
                continue
            rem = math.ceil(lease.expiry - now)
            if rem >= lease.ttl:
                continue
            out.append((lid, rem))
        return out

    def next_deadline(self) -> float | None:
        """The earliest time expired() or due_checkpoints() may have something (for a loop that
        wants to sleep exactly; stale heap entries may make it early, never late)."""
        ts = [h[0][0] for h in (self._exp_heap, self._cp_heap) if h]
        return min(ts) if ts else None

    # ---- internals -----------------------------------------------------------------------
    def _refresh(self, lease: Lease, extend: float, now: float) -> None:
        lease.expiry = now + extend + lease.effective_remaining_ttl()
        self._register_expiry(lease.id, lease.expiry)

    def _register_expiry(self, lid: int, t: float) -> None:
        seq = next(self._seq)
        self._exp_reg[lid] = (t, seq)
        heapq.heappush(self._exp_heap, (t, seq, lid))
        if len(self._exp_heap) > 2 * len(self._exp_reg) + 64:
            self._exp_heap = [(t, s, i) for i, (t, s) in self._exp_reg.items()]
            heapq.heapify(self._exp_heap)

    def _schedule_checkpoint(self, lease: Lease) -> None:
        if not self.checkpointing or lease.effective_remaining_ttl() <= self.checkpoint_interval:
            return
        t = self.now() + self.checkpoint_interval
        seq = next(self._seq)
        self._cp_reg[lease.id] = (t, seq)
        heapq.heappush(self._cp_heap, (t, seq, lease.id))
        if len(self._cp_heap) > 2 * len(self._cp_reg) + 64:
            self._cp_heap = [(t, s, i) for i, (t, s) in self._cp_reg.items()]
            heapq.heapify(self._cp_heap)

    def _clear_heaps(self) -> None:
        self._exp_heap = []
        self._exp_reg = {}
        self._cp_heap = []
        self._cp_reg = {}

    def _warn(self, msg: str, **fields) -> None:
        if self.lg is not None:
            self.lg.warn(msg, **fields)

    def ids(self) -> Iterable[int]:
        return self._leases.keys()
