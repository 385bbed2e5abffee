"""Who is asking: the identity a client request carries down to the raft log entry.

The API layer (api/auth_guard.py) sets REQUEST_AUTH for each client request from its token:
an AuthInfo, or None when the request has no token. Anything proposed outside a client request
(lease expiry revokes, member attributes) keeps the default, INTERNAL, and is stamped as root,
as etcd's lessor revokes with AuthStore.WithRoot.
"""
from __future__ import annotations

import contextvars

INTERNAL = object()
REQUEST_AUTH: contextvars.ContextVar = contextvars.ContextVar("pyetcd_request_auth", default=INTERNAL)


def stamp_header(header, store) -> None:
    """Fill an InternalRaftRequest header's username and auth revision (etcd's
    processInternalRaftRequestOnce does so from AuthInfoFromCtx)."""
    ai = REQUEST_AUTH.get()
    if ai is INTERNAL:
        if store is not None and store.enabled:
            header.username = "root"
            header.auth_revision = store.revision
    elif ai is not None:
        header.username = ai.username
        header.auth_revision = ai.revision


def client_identity():
    """(False, None) outside a client request (checks do not apply); else (True, its AuthInfo
    or None)."""
    ai = REQUEST_AUTH.get()
    if ai is INTERNAL:
        return False, None
    return True, ai
