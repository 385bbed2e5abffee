"""What every service shares: turning EtcdErrors into gRPC statuses, header filling."""
from __future__ import annotations

import functools

import grpc

from pyetcd import errors


def unary(fn):
    """Wrap a unary handler: an EtcdError becomes etcd's status; a bug becomes INTERNAL, not a crash."""

    @functools.wraps(fn)
    async def handler(self, request, context):
        try:
            resp = await fn(self, request, context)
        except errors.EtcdError as e:
            await context.abort(e.code, e.message)
        except grpc.aio.AbortError:
            raise
        except Exception as e:  # never take the server down on a request
            self.server.lg.error("request failed", method=fn.__name__, error=repr(e))
            await context.abort(grpc.StatusCode.INTERNAL, f"pyetcd: internal error: {e!r}")
        self.server.fill_header(resp.header)
        return resp

    return handler


class Service:
    def __init__(self, server):
        self.server = server


def unimplemented_methods(cls, names: list[str], what: str):
    """Give `cls` handlers that answer etcd-style UNIMPLEMENTED for features not built yet."""

    def make(name):
        async def handler(self, request_or_iterator, context):
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"pyetcd: {what} {name} is not implemented yet")
        handler.__name__ = name
        return handler

    for n in names:
        setattr(cls, n, make(n))
    return cls
