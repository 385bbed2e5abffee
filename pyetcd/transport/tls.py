"""TLS settings of a listener and of the connections it dials, as etcd 3.5's transport.TLSInfo.

    info = TLSInfo(cert_file, key_file, trusted_ca_file=..., client_cert_auth=...)
    info.empty()                  # neither cert nor key: etcd's "no TLS"
    str(info)                     # etcd's summary ("cert = ..., key = ..., ...") for its log lines
    creds = info.server_credentials()    # grpc.ServerCredentials, or TLSError with etcd's text
    creds = info.channel_credentials()   # for dialing https peers (our cert is the client cert)
    info = self_cert(lg, dirpath, hosts, validity_years)   # --auto-tls / --peer-auto-tls

Server side, as etcd's ServerConfig: the key pair is checked when the listener is made; a
trusted CA file or --client-cert-auth makes client certificates required and verified (against
the CA file, or the system roots when only --client-cert-auth is given, as Go does).
Dialing side, as etcd's ClientConfig: the listener's cert/key are presented as the client
certificate and the trusted CA file verifies the server (system roots without one). Certificates
made by self_cert are not verified by the dialer (etcd sets InsecureSkipVerify for them);
grpcio has no such switch, so the dialer pins the certificate the peer presents (peer_pins).
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass


class TLSError(Exception):
    """A TLS setting that cannot be used; the message is etcd's (Go's) text where etcd has one."""


# Where Go 1.16 looks for the system roots on Linux (crypto/x509/root_linux.go), then
# Python's OpenSSL default.
_SYSTEM_ROOTS = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                 "/etc/ssl/ca-bundle.pem", "/etc/pki/tls/cacert.pem",
                 "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "/etc/ssl/cert.pem"]


def system_roots() -> bytes | None:
    """The system CA bundle (PEM), as Go finds it (SSL_CERT_FILE first), or None."""
    paths = [os.environ.get("SSL_CERT_FILE", "")] + _SYSTEM_ROOTS + [ssl.get_default_verify_paths().cafile or ""]
    for p in paths:
        if p and os.path.isfile(p):
            try:
                with open(p, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if b"-----BEGIN CERTIFICATE-----" in data:
                return data
    return None


def _read(path: str) -> bytes:
    """os.ReadFile with Go's error texts."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise TLSError(f"open {path}: no such file or directory") from None
    except PermissionError:
        raise TLSError(f"open {path}: permission denied") from None
    except IsADirectoryError:
        raise TLSError(f"read {path}: is a directory") from None
    except OSError as e:
        raise TLSError(f"open {path}: {e.strerror or e}") from None


def _check_pair(cert_file: str, key_file: str, cert: bytes, key: bytes) -> None:
    """tls.X509KeyPair's checks (stdlib ssl does the parsing), with Go's messages."""
    if b"-----BEGIN" not in cert:
        raise TLSError("tls: failed to find any PEM data in certificate input")
    if b"-----BEGIN" not in key:
        raise TLSError("tls: failed to find any PEM data in key input")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as e:
        if "KEY_VALUES_MISMATCH" in str(e) or "key values mismatch" in str(e):
            raise TLSError("tls: private key does not match public key") from None
        raise TLSError(f"tls: failed to load key pair {cert_file}, {key_file}: {e}") from None


@dataclass
class TLSInfo:
    cert_file: str = ""
    key_file: str = ""
    trusted_ca_file: str = ""
    client_cert_auth: bool = False
    crl_file: str = ""
    # Made by self_cert: dialers skip verification (pinning instead), and the cert doubles as
    # the client certificate (etcd's ClientCertFile/ClientKeyFile).
    self_cert: bool = False

    def empty(self) -> bool:
        return not self.cert_file and not self.key_file

    def __str__(self) -> str:
        cc = self.cert_file if self.self_cert else ""
        ck = self.key_file if self.self_cert else ""
        auth = "true" if self.client_cert_auth else "false"
        return (f"cert = {self.cert_file}, key = {self.key_file}, client-cert={cc}, client-key={ck}, "
                f"trusted-ca = {self.trusted_ca_file}, client-cert-auth = {auth}, crl-file = {self.crl_file}")

    @property
    def requires_client_cert(self) -> bool:
        # etcd 3.5 ServerConfig: a trusted CA file alone already means RequireAndVerifyClientCert.
        return self.client_cert_auth or bool(self.trusted_ca_file)

    def key_pair(self) -> tuple[bytes, bytes]:
        """(key, cert) PEM bytes, checked as etcd's baseConfig checks them."""
        if not self.key_file or not self.cert_file:
            raise TLSError(f"KeyFile and CertFile must both be present[key: {self.key_file}, cert: {self.cert_file}]")
        cert = _read(self.cert_file)
        key = _read(self.key_file)
        _check_pair(self.cert_file, self.key_file, cert, key)
        return key, cert

    def _roots(self) -> bytes | None:
        if not self.trusted_ca_file:
            return None
        data = _read(self.trusted_ca_file)
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise TLSError(f"pyetcd: no PEM certificate in trusted CA file {self.trusted_ca_file}")
        return data

    def server_credentials(self):
        import grpc

        key, cert = self.key_pair()
        roots = self._roots()
        if self.crl_file:
            raise TLSError("pyetcd: certificate revocation lists (--client-crl-file, --peer-crl-file) "
                           "are not supported yet")
        if self.requires_client_cert and roots is None:
            roots = system_roots()  # Go verifies client certs against the system pool
            if roots is None:
                raise TLSError("pyetcd: client certificate authentication without a trusted CA file "
                               "needs the system CA bundle, and none was found")
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=roots,
                                           require_client_auth=self.requires_client_cert)

    def channel_credentials(self, pinned: bytes | None = None):
        """Credentials to dial a TLS server with this member's cert as the client certificate.
        ``pinned``: the server's own certificate, trusted instead of a CA (self-signed peers)."""
        import grpc

        key = cert = None
        if not self.empty():
            key, cert = self.key_pair()
        roots = pinned or self._roots() or system_roots()
        return grpc.ssl_channel_credentials(root_certificates=roots, private_key=key, certificate_chain=cert)


def _go_time(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _san(hosts: list[str]) -> str:
    out = []
    for h in hosts:
        host = h.rsplit(":", 1)[0] if not h.startswith("[") else h[1:].split("]", 1)[0]
        try:
            out.append(f"IP:{ipaddress.ip_address(host)}")
        except ValueError:
            out.append(f"DNS:{host}")
    return ", ".join(dict.fromkeys(out))


def self_cert(lg, dirpath: str, hosts: list[str], validity_years: int = 1) -> TLSInfo:
    """etcd's transport.SelfCert: a self-signed ECDSA certificate for ``hosts`` (host:port
    strings; IPs become IP SANs, names DNS SANs) in ``dirpath``/cert.pem and key.pem, kept and
    reused if both files exist. Made with the openssl command (no crypto library needed).

    etcd uses P-521 with SHA-512; gRPC's TLS library (BoringSSL) does not offer P-521 signatures
    by default, so a P-521 server key fails every handshake with a gRPC client or peer
    (NO_COMMON_SIGNATURE_ALGORITHMS). pyetcd uses P-256 with SHA-256; everything else (subject
    O=etcd, key usages, serverAuth, CA:FALSE, random 128-bit serial, validity, file names and
    modes, SEC1 "EC PRIVATE KEY" file) is etcd's."""
    if validity_years <= 0:
        err = "selfSignedCertValidity is invalid,it should be greater than 0"
        lg.warn("cannot generate cert", error=err)
        raise TLSError(err)
    os.makedirs(dirpath, mode=0o700, exist_ok=True)
    cert_path = os.path.abspath(os.path.join(dirpath, "cert.pem"))
    key_path = os.path.abspath(os.path.join(dirpath, "key.pem"))
    info = TLSInfo(cert_file=cert_path, key_file=key_path, self_cert=True)
    if os.path.exists(cert_path) and os.path.exists(key_path):
        return info
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TLSError("pyetcd: --auto-tls/--peer-auto-tls need the openssl command to generate certificates")
    now = datetime.datetime.now(datetime.timezone.utc)
    days = 365 * validity_years
    lg.warn("automatically generate certificates",
            **{"certificate-validity-bound-not-after": _go_time(now + datetime.timedelta(days=days))})
    with tempfile.TemporaryDirectory(dir=dirpath) as tmp:
        key_tmp, cert_tmp = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
        cnf = os.path.join(tmp, "req.cnf")
        base = ("[ req ]\ndistinguished_name = dn\nx509_extensions = v3\nprompt = no\n[ dn ]\nO = etcd\n"
                "[ v3 ]\nkeyUsage = critical, digitalSignature, keyEncipherment\n"
                "extendedKeyUsage = serverAuth\nbasicConstraints = critical, CA:FALSE\n"
                f"subjectAltName = {_san(hosts)}\n")
        serial = "0x%032x" % secrets.randbits(128)  # Go: a random 128-bit serial
        try:
            subprocess.run([openssl, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key_tmp],
                           check=True, capture_output=True)
            # Go sets no key identifiers on a leaf; OpenSSL < 3 does not know "none", so retry without.
            for extra in ("subjectKeyIdentifier = none\nauthorityKeyIdentifier = none\n", ""):
                with open(cnf, "w") as f:
                    f.write(base + extra)
                r = subprocess.run([openssl, "req", "-new", "-x509", "-config", cnf, "-key", key_tmp,
                                    "-out", cert_tmp, "-sha256", "-days", str(days), "-set_serial", serial],
                                   capture_output=True)
                if r.returncode == 0:
                    break
            else:
                raise TLSError(f"pyetcd: openssl could not create a certificate: "
                               f"{r.stderr.decode(errors='replace').strip()}")
        except subprocess.CalledProcessError as e:
            raise TLSError(f"pyetcd: openssl could not create a key: "
                           f"{e.stderr.decode(errors='replace').strip()}") from None
        os.chmod(cert_tmp, 0o644)
        os.replace(cert_tmp, cert_path)
        lg.info("created cert file", path=cert_path)
        os.chmod(key_tmp, 0o600)
        os.replace(key_tmp, key_path)
        lg.info("created key file", path=key_path)
    return info


def pin_server_cert(host: str, port: int, timeout: float = 2.0) -> tuple[bytes, str | None]:
    """The certificate a TLS server presents (PEM, unverified: this is the pinning step), and a
    name from it to check the server against (``host`` when the cert names it, else its first
    subject alternative name, else None). Blocking; run it off the event loop."""
    import socket

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as sock:
        with ctx.wrap_socket(sock) as conn:
            der = conn.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der)
    # A second handshake that trusts the pinned cert gives its parsed names (and proves the
    # cert can serve as its own trust anchor).
    vctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    vctx.check_hostname = False
    vctx.load_verify_locations(cadata=pem)
    names: list[str] = []
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            with vctx.wrap_socket(sock) as conn:
                names = [v for _k, v in conn.getpeercert().get("subjectAltName", ())]
    except (OSError, ssl.SSLError):
        pass
    if host in names or not names:
        return pem.encode(), (host if names else None)
    return pem.encode(), names[0]


async def dial(target: str, info: TLSInfo, timeout: float = 2.0, options=()):
    """A TLS grpc.aio channel to ``target`` (host:port) with ``info``'s client credentials; a
    self-signed ``info`` (auto TLS) pins the server's certificate first, as in Transport."""
    import asyncio

    import grpc

    options = list(options)
    pinned = None
    if info.self_cert:
        host, port = target.rsplit(":", 1)
        pinned, name = await asyncio.get_running_loop().run_in_executor(
            None, pin_server_cert, host.strip("[]"), int(port), timeout)
        if name:
            options.append(("grpc.ssl_target_name_override", name))
    return grpc.aio.secure_channel(target, info.channel_credentials(pinned=pinned), options=options)


def _same_ip(a: str, b: str) -> bool:
    try:
        x, y = ipaddress.ip_address(a), ipaddress.ip_address(b)
    except ValueError:
        return False
    if isinstance(x, ipaddress.IPv6Address) and x.ipv4_mapped:
        x = x.ipv4_mapped
    if isinstance(y, ipaddress.IPv6Address) and y.ipv4_mapped:
        y = y.ipv4_mapped
    return x == y


async def check_cert_san(host: str, ip_sans: list[str], dns_sans: list[str]) -> str | None:
    """etcd's checkCertSAN for a peer's client certificate: None when the certificate names the
    address ``host`` the peer connects from (an IP SAN, or a DNS SAN that resolves to it either
    way), else Go's error text. A certificate without SANs passes, as in etcd."""
    import asyncio
    import socket

    if not ip_sans and not dns_sans:
        return None
    if ip_sans:
        if any(_same_ip(host, ip) for ip in ip_sans):
            return None
        if not dns_sans:
            return f"x509: certificate is valid for {', '.join(ip_sans)}, not {host}"
    loop = asyncio.get_running_loop()
    names = [d for d in dns_sans if not d.startswith("*.")]
    wildcards = [d[1:] for d in dns_sans if d.startswith("*.")]
    err = None
    try:  # reverse lookup of the peer's address
        rname, _ = await loop.getnameinfo((host, 0), socket.NI_NAMEREQD)
        rname = rname.rstrip(".")
        if rname in names or any(rname.endswith(w) for w in wildcards):
            return None
    except OSError as e:
        err = f"lookup {host}: {e.strerror or e}"
    for name in names:  # forward lookups of the certificate's names
        try:
            infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except OSError as e:
            err = f"lookup {name}: {e.strerror or e}"
            continue
        if any(_same_ip(host, i[4][0]) for i in infos):
            return None
    quoted = "[" + " ".join(f'"{d}"' for d in dns_sans) + "]"
    return f'tls: "{host}" does not match any of DNSNames {quoted}' + (f" ({err})" if err else "")
