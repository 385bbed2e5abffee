"""The member's TLS settings from its flags, checked the way etcd 3.5.1 checks them.

    peer = peer_tls(cfg, lg)            # TLSInfo; --peer-auto-tls made here (data-dir/fixtures/peer)
    client = client_tls(cfg, lg)        # TLSInfo; --auto-tls made here (data-dir/fixtures/client)
    listeners = client_listeners(cfg, client, lg)   # [(host:port, secure)], one per address

etcd configures its peer listeners first, then its client listeners; a problem found there ends
the start with etcd's two lines (warn "failed to start etcd", fatal "discovery failed", exit 1),
which main.py prints for a StartError. Files named by the flags are read later, when the
listener is made (peer: at once; client: after the member started, as etcd's serve does).
"""
from __future__ import annotations

from urllib.parse import urlsplit

from pyetcd.transport.tls import TLSError, TLSInfo, self_cert


class StartError(Exception):
    """A listener setting etcd refuses before the member starts (etcd: "discovery failed")."""


def _host_port(url: str) -> str:
    return urlsplit(url).netloc


# As etcd's SelfCert, a generated certificate replaces the whole TLS setting: --client-cert-auth,
# the trusted CA and the CRL of that side are dropped with --auto-tls (etcd 3.5.1 logs
# "client-cert-auth = false" then).


def _auto_tls(cfg, lg, info: TLSInfo, kind: str, urls: list[str]) -> TLSInfo:
    """--auto-tls / --peer-auto-tls: etcd's self-signed fixtures, unless certs were given."""
    if not info.empty():
        lg.warn(f"ignoring {kind} auto TLS since certs given")
        return info
    import os

    try:
        return self_cert(lg, os.path.join(cfg.data_dir, "fixtures", kind), [_host_port(u) for u in urls],
                         cfg.values.get("self-signed-cert-validity", 1))
    except (TLSError, OSError) as e:
        lg.fatal(f"failed to get {kind} self-signed certs", error=str(e))
        raise SystemExit(1)


def peer_tls(cfg, lg) -> TLSInfo:
    info = TLSInfo(cfg.peer_cert_file, cfg.peer_key_file, cfg.peer_trusted_ca_file,
                   cfg.peer_client_cert_auth, cfg.values.get("peer-crl-file", ""))
    lg.info("configuring peer listeners", **{"listen-peer-urls": cfg.listen_peer_urls})
    if cfg.peer_auto_tls:
        info = _auto_tls(cfg, lg, info, "peer", cfg.listen_peer_urls)
    if not info.empty():
        lg.info("starting with peer TLS", **{"tls-info": str(info), "cipher-suites": []})
    for u in cfg.listen_peer_urls:
        if u.startswith("http://"):
            if not info.empty():
                lg.warn("scheme is HTTP while key and cert files are present; ignoring key and cert files",
                        **{"peer-url": u})
            if info.client_cert_auth:
                lg.warn("scheme is HTTP while --peer-client-cert-auth is enabled; ignoring client cert "
                        "auth for this URL", **{"peer-url": u})
    if any(u.startswith("https://") for u in cfg.listen_peer_urls):
        if info.empty():
            https = next(u for u in cfg.listen_peer_urls if u.startswith("https://"))
            raise StartError(f"cannot listen on TLS for {_host_port(https)}: KeyFile and CertFile are not presented")
        try:  # etcd reads the files when it makes the peer listener, before the member starts
            info.server_credentials()
        except TLSError as e:
            raise StartError(str(e)) from None
    return info


def client_tls(cfg, lg) -> TLSInfo:
    info = TLSInfo(cfg.cert_file, cfg.key_file, cfg.trusted_ca_file, cfg.client_cert_auth,
                   cfg.client_crl_file)
    lg.info("configuring client listeners", **{"listen-client-urls": cfg.listen_client_urls})
    if cfg.auto_tls:
        info = _auto_tls(cfg, lg, info, "client", cfg.listen_client_urls)
    return info


def client_listeners(cfg, info: TLSInfo, lg) -> list[tuple[str, bool]]:
    """(host:port to bind, serves TLS) for each distinct address, in flag order, with etcd's
    warnings and errors. etcd serves http and https on one port (cmux); grpcio cannot, so the two
    schemes on one address are refused."""
    out: dict[str, bool] = {}
    for u in cfg.listen_client_urls:
        p = urlsplit(u)
        if p.scheme not in ("http", "https"):
            raise StartError(f"unsupported client URL scheme {p.scheme!r} (pyetcd serves http and https)")
        if p.scheme == "http":
            if not info.empty():
                lg.warn("scheme is HTTP while key and cert files are present; ignoring key and cert files",
                        **{"client-url": u})
            if info.client_cert_auth:
                lg.warn("scheme is HTTP while --client-cert-auth is enabled; ignoring client cert auth "
                        "for this URL", **{"client-url": u})
        secure = p.scheme == "https"
        if secure and info.empty():
            raise StartError(f"TLS key/cert (--cert-file, --key-file) must be provided for client url {u} "
                             "with HTTPS scheme")
        host = p.hostname or "localhost"
        addr = f"[{host}]:{p.port}" if ":" in host else f"{host}:{p.port}"
        if addr in out and out[addr] != secure:
            raise StartError(f"pyetcd: cannot serve http and https on the same address {addr} "
                             "(etcd multiplexes them; pyetcd needs a port for each)")
        out[addr] = secure
    return list(out.items())
