"""v3lockpb.Lock (etcd server/etcdserver/api/v3lock): a distributed lock held by a key with a lease.

Lock(name, lease) runs concurrency.Mutex.Lock on this member (see ``concurrency``): it answers
once ``<name>/<lease hex>`` is the oldest key under ``<name>/``, with that key and a header.
Unlock(key) deletes the key; any key may be given, and a missing one is no error (etcd).
A Lock the client cancels while it waits deletes its key, as etcd's does.
"""
from __future__ import annotations

from pyetcd.pb import v3lock, v3lock_grpc

from .base import Service
from .concurrency import unary_recipe


class LockService(Service, v3lock_grpc.LockServicer):
    def __init__(self, server, client):
        super().__init__(server)
        self.client = client  # concurrency.LocalClient

    @unary_recipe
    async def Lock(self, request, context):
        key, header = await self.client.lock(request.name, request.lease)
        return v3lock.LockResponse(header=header, key=key)

    @unary_recipe
    async def Unlock(self, request, context):
        resp = await self.client.delete(request.key)
        return v3lock.UnlockResponse(header=resp.header)
