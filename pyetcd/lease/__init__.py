"""Leases: the lessor (expiry heap, checkpoints, key attachment). See lessor.py."""
from .lessor import (MAX_LEASE_TTL, Lease, LeaseExpiredError, Lessor, NotPrimaryError, min_lease_ttl,
                     request_timeout)

__all__ = ["MAX_LEASE_TTL", "Lease", "LeaseExpiredError", "Lessor", "NotPrimaryError", "min_lease_ttl",
           "request_timeout"]
