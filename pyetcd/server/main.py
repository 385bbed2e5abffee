"""`pyetcd`: start a member with etcd's flags (`pyetcd` alone = etcd's embedded default)."""
from __future__ import annotations

import asyncio
import os
import signal
import sys

from pyetcd import ETCD_VERSION, __version__

from . import config
from .log import Logger


async def serve(cfg, lg: Logger, tls=None) -> int:
    """tls: (peer TLSInfo, client TLSInfo, client listeners) from tlsconfig (main() makes them)."""
    import grpc

    from pyetcd.api.cluster import ClusterService
    from pyetcd.transport.tls import TLSError
    from pyetcd.api.kv import KVService
    from pyetcd.api.maintenance import MaintenanceService
    from pyetcd.api.lease import LeaseService
    from pyetcd.api.auth import AuthService
    from pyetcd.api.watch import WatchService
    from pyetcd.watch import WatchableStore
    from pyetcd.pb import rpc_grpc

    from .member import DataDirError, EtcdServer

    server = EtcdServer(cfg, lg)
    if tls is None:
        tls = _tls_setup(cfg, lg)
    server.peer_tls, server.client_tls, listeners = tls
    server.stop_event = asyncio.Event()
    try:
        await server.open()
        await server.start()
    except DataDirError as e:
        lg.fatal("failed to start member", error=str(e))
        await server.stop()
        return 1
    except (OSError, RuntimeError) as e:  # e.g. a peer URL that cannot be bound
        lg.fatal("failed to start member", error=str(e), **{"listen-peer-urls": cfg.listen_peer_urls})
        await server.stop()
        return 1
    options = [
        # etcd: max-request-bytes plus 512 KiB of gRPC overhead.
        ("grpc.max_receive_message_length", cfg.max_request_bytes + 512 * 1024),
        ("grpc.max_send_message_length", 2**31 - 1),
        ("grpc.max_concurrent_streams", 2**31 - 1),
        ("grpc.http2.min_ping_interval_without_data_ms", int(cfg.grpc_keepalive_min_time * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.so_reuseport", 1 if cfg.socket_reuse_port else 0),
    ]
    if cfg.grpc_keepalive_interval > 0:
        options.append(("grpc.keepalive_time_ms", int(cfg.grpc_keepalive_interval * 1000)))
    if cfg.grpc_keepalive_timeout > 0:
        options.append(("grpc.keepalive_timeout_ms", int(cfg.grpc_keepalive_timeout * 1000)))
    watch_store = WatchableStore(server.kv)
    server.event_listeners.append(watch_store.notify)
    server.restore_hooks.append(watch_store.restore)
    watch_store.start()
    g = grpc.aio.server(options=options)
    from pyetcd.api.auth_guard import AuthGuard
    from pyetcd.api.concurrency import LocalClient
    from pyetcd.api.election import ElectionService
    from pyetcd.api.lock import LockService
    from pyetcd.pb import v3election_grpc, v3lock_grpc
    kv_service, maint_service = KVService(server), MaintenanceService(server)
    cluster_service, watch_service = ClusterService(server), WatchService(server, watch_store)
    lease_service, auth_service = LeaseService(server), AuthService(server)
    loopback = LocalClient(server, watch_store, lease_service)  # etcd's v3client to itself
    election_service, lock_service = ElectionService(server, loopback), LockService(server, loopback)
    guard = AuthGuard(server)  # tokens and permission checks (wraps the methods in place)
    guard.install(kv=kv_service, lease=lease_service, maintenance=maint_service, cluster=cluster_service,
                  auth=auth_service, election=election_service, lock=lock_service, max_txn_ops=cfg.max_txn_ops)
    watch_service.auth_guard = guard
    rpc_grpc.add_KVServicer_to_server(kv_service, g)
    rpc_grpc.add_MaintenanceServicer_to_server(maint_service, g)
    rpc_grpc.add_ClusterServicer_to_server(cluster_service, g)
    rpc_grpc.add_WatchServicer_to_server(watch_service, g)
    rpc_grpc.add_LeaseServicer_to_server(lease_service, g)
    rpc_grpc.add_AuthServicer_to_server(auth_service, g)
    v3election_grpc.add_ElectionServicer_to_server(election_service, g)
    v3lock_grpc.add_LockServicer_to_server(lock_service, g)
    client_tls = server.client_tls
    try:
        creds = None
        if not client_tls.empty():  # as etcd's serveClients, even when no URL is https
            lg.info("starting with client TLS", **{"tls-info": str(client_tls), "cipher-suites": []})
            if any(secure for _, secure in listeners):
                creds = client_tls.server_credentials()
        for addr, secure in listeners:
            if secure:
                g.add_secure_port(addr, creds)
            else:
                g.add_insecure_port(addr)
    except (RuntimeError, TLSError) as e:
        lg.fatal("listener failed" if isinstance(e, TLSError) else "failed to listen on client URLs",
                 error=str(e), **({} if isinstance(e, TLSError) else {"urls": cfg.listen_client_urls}))
        await server.stop()
        return 1
    metrics_http = None
    if cfg.listen_metrics_urls:  # /metrics and /health over HTTP/1.1 (grpc.aio cannot serve them)
        from pyetcd.api.metrics_http import MetricsHTTPServer
        metrics_http = MetricsHTTPServer(server, lg)
        try:
            await metrics_http.start(cfg.listen_metrics_urls, getattr(server, "client_tls", None))
        except (OSError, ValueError) as e:
            lg.fatal("failed to start etcd", error=str(e), **{"listen-metrics-urls": cfg.listen_metrics_urls})
            await metrics_http.stop()
            await g.stop(None)
            await watch_store.stop()
            await server.stop()
            return 1
    # As etcd (serveCtx.serve waits on ReadyNotify): the client ports are bound, but requests are
    # served only once this member's name and client URLs are committed, so a member that answers
    # is listed by MemberList with its name. The metrics URLs above answer at once, as etcd's do.
    stop = server.stop_event
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ready = asyncio.ensure_future(server.published.wait())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({ready, stopping}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    stopping.cancel()
    await g.start()
    for addr, secure in listeners:
        if secure:
            lg.info("serving client traffic securely", address=addr)
        else:
            lg.info("serving client traffic insecurely; this is strongly discouraged!", address=addr)
    lg.info("ready to serve client requests", name=cfg.name, **{"local-member-id": f"{server.member_id:x}"})

    await stop.wait()
    lg.info("received signal; shutting down")
    if metrics_http is not None:
        await metrics_http.stop()
    await g.stop(grace=1.0)
    await watch_store.stop()
    await server.stop()
    lg.info("stopped serving", name=cfg.name)
    return 0


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg = config.parse(argv)
    except config.FlagError as e:
        sys.stderr.write(f"{e}\n{config.usage()}")
        raise SystemExit(2)
    except config.ConfigError as e:
        Logger().fatal("failed to verify flags", error=str(e))
        raise SystemExit(1)
    if cfg.help:
        sys.stdout.write(config.usage())
        return
    if cfg.version:
        sys.stdout.write(f"pyetcd Version: {__version__}\netcd API Version: {ETCD_VERSION}\n"
                         f"Python Version: {sys.version.split()[0]}\n")
        return
    lg = Logger(cfg.log_level)
    lg.info("Running: ", args=[sys.argv[0], *argv])
    if not cfg.is_set("data-dir"):
        lg.warn("'data-dir' was empty; using default", **{"data-dir": cfg.data_dir})
    # gRPC's own log lines (e.g. every refused TLS handshake, at INFO) would break the JSON log;
    # gRPC reads this once, when it is first imported (tlsconfig imports it).
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    tls = _tls_setup(cfg, lg)
    bind = [addr for addr, _ in tls[2]]
    lg.info("starting a pyetcd server", **{
        "etcd-version": ETCD_VERSION, "pyetcd-version": __version__, "name": cfg.name,
        "data-dir": cfg.data_dir, "listen-client-urls": cfg.listen_client_urls,
        "advertise-client-urls": cfg.advertise_client_urls, "bind": bind, "pid": os.getpid()})
    if os.environ.get("PYETCD_UVLOOP", "1") != "0":  # uvloop: ~15% less CPU per request
        import uvloop
        raise SystemExit(uvloop.run(serve(cfg, lg, tls)))
    raise SystemExit(asyncio.run(serve(cfg, lg, tls)))


def _tls_setup(cfg, lg: Logger):
    """Peer and client TLS and the client listeners, checked in etcd's order (tlsconfig.py); a
    refusal ends the start with etcd's lines and exit status 1."""
    from . import tlsconfig

    try:
        peer = tlsconfig.peer_tls(cfg, lg)
        client = tlsconfig.client_tls(cfg, lg)
        return peer, client, tlsconfig.client_listeners(cfg, client, lg)
    except tlsconfig.StartError as e:
        lg.warn("failed to start etcd", error=str(e))
        lg.fatal("discovery failed", error=str(e))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
