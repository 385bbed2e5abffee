"""Shared bits of the peer transport: identity metadata, URL handling, channel options, logging."""
from __future__ import annotations

import logging
from urllib.parse import urlsplit

import grpc

# Metadata keys, named after etcd's rafthttp headers (gRPC wants lower case).
MD_CLUSTER_ID = "x-etcd-cluster-id"
MD_FROM = "x-server-from"
MD_TO = "x-raft-to"

# A raft batch may carry MsgApps of several MiB and a snapshot chunk is 1 MiB; keep gRPC's
# 4 MiB default from refusing a legal batch.
MAX_MESSAGE_BYTES = 256 << 20

CHANNEL_OPTIONS = [
    # One TCP connection per channel: the snapshot channel must not share (and so
    # head-of-line block) the connection that carries heartbeats, as etcd keeps them apart.
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # gRPC's own reconnect backoff defaults to 1 s doubling to 120 s; a member restarted
    # after a crash must be found again within our backoff (<= 1 s).
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Find a silently dead peer (no RST, e.g. a partition) while the stream is idle.
    ("grpc.keepalive_time_ms", 5000),
    ("grpc.keepalive_timeout_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]

SERVER_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Refuse a port another process already listens on (gRPC sets SO_REUSEPORT by default,
    # which would let two members silently share one peer port).
    ("grpc.so_reuseport", 0),
    # End the streams of a member that vanished without closing its connection.
    ("grpc.keepalive_time_ms", 10000),
    ("grpc.keepalive_timeout_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 1000),
    ("grpc.http2.max_ping_strikes", 0),
]


def url_to_target(url: str) -> str:
    """'http://127.0.0.1:2380' -> '127.0.0.1:2380' (http and https peer URLs)."""
    u = urlsplit(url)
    if u.scheme not in ("http", "https", ""):
        raise ValueError(f"unsupported peer URL scheme {u.scheme!r} in {url!r}")
    if not u.hostname or u.port is None:
        raise ValueError(f"peer URL {url!r} needs a host and a port")
    host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
    return f"{host}:{u.port}"


def is_tls_url(url: str) -> bool:
    return url.startswith("https://")


def id_hex(x: int) -> str:
    return f"{x:016x}"


def metadata(cluster_id: int | None, from_id: int, to_id: int | None) -> tuple:
    md = [(MD_FROM, id_hex(from_id))]
    if cluster_id is not None:
        md.append((MD_CLUSTER_ID, id_hex(cluster_id)))
    if to_id is not None:
        md.append((MD_TO, id_hex(to_id)))
    return tuple(md)


def parse_metadata(md) -> dict[str, int]:
    """Invocation metadata -> {key: int id} for our identity keys; a malformed value is dropped."""
    out = {}
    for k, v in md or ():
        if k in (MD_CLUSTER_ID, MD_FROM, MD_TO):
            try:
                out[k] = int(v, 16)
            except (TypeError, ValueError):
                pass
    return out


def rpc_code(exc: BaseException) -> grpc.StatusCode | None:
    code = getattr(exc, "code", None)
    if callable(code):
        try:
            return code()
        except Exception:  # noqa: BLE001
            return None
    return None


def rpc_details(exc: BaseException) -> str:
    details = getattr(exc, "details", None)
    if callable(details):
        try:
            return details() or ""
        except Exception:  # noqa: BLE001
            return ""
    return str(exc)


class StdLogger:
    """The server's logger interface (debug/info/warn/error(msg, **fields)) over stdlib logging."""

    def __init__(self, name: str = "pyetcd.transport"):
        self._log = logging.getLogger(name)

    def _emit(self, level: int, msg: str, fields: dict) -> None:
        if self._log.isEnabledFor(level):
            if fields:
                msg = msg + " " + " ".join(f"{k}={v}" for k, v in fields.items())
            self._log.log(level, msg)

    def debug(self, msg: str, **fields) -> None:
        self._emit(logging.DEBUG, msg, fields)

    def info(self, msg: str, **fields) -> None:
        self._emit(logging.INFO, msg, fields)

    def warn(self, msg: str, **fields) -> None:
        self._emit(logging.WARNING, msg, fields)

    def error(self, msg: str, **fields) -> None:
        self._emit(logging.ERROR, msg, fields)
