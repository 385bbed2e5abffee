"""Services whose server side is not built yet: every call answers UNIMPLEMENTED (see README)."""
from __future__ import annotations

from pyetcd.pb import rpc_grpc

from .base import Service, unimplemented_methods


class AuthService(Service, rpc_grpc.AuthServicer):
    pass


unimplemented_methods(AuthService, [n for n in dir(rpc_grpc.AuthServicer) if not n.startswith("_")], "Auth")
