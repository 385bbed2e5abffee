"""Throw-away certificates for TLS tests, made with the openssl command line tool.

    from pyetcd.testing import certs
    if not certs.have_openssl(): pytest.skip(...)
    c = certs.make(tmp_dir)       # paths by name
    c["ca"], c["server"], c["server-key"], c["client"], c["client-key"], ...

Made (all EC P-256, valid two days):
  ca / ca-key            the trusted CA ("pyetcd-test-ca")
  other-ca / other-ca-key  an unrelated CA, to be trusted by mistake
  server / server-key    signed by ca; SAN IP:127.0.0.1; serverAuth+clientAuth (peers use it both ways)
  client / client-key    signed by ca; CN=client; clientAuth
  other-client / other-client-key   signed by other-ca; CN=client; clientAuth
  badsan / badsan-key    signed by ca; SAN IP:10.9.9.9 only; serverAuth+clientAuth
"""
from __future__ import annotations

import os
import shutil
import subprocess


def have_openssl() -> bool:
    return shutil.which("openssl") is not None


def _ossl(d: str, *args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)


def _key(d: str, name: str) -> None:
    _ossl(d, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key")


def _ca(d: str, name: str, cn: str) -> None:
    _key(d, name)
    _ossl(d, "req", "-x509", "-new", "-key", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
          "-subj", f"/CN={cn}")


def _leaf(d: str, name: str, ca: str, cn: str, ext: str, serial: int) -> None:
    _key(d, name)
    _ossl(d, "req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}")
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(ext)
    _ossl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
          "-set_serial", str(serial), "-out", f"{name}.crt", "-days", "2",
          "-extfile", f"{name}.ext")


def make(d: str) -> dict[str, str]:
    os.makedirs(d, exist_ok=True)
    _ca(d, "ca", "pyetcd-test-ca")
    _ca(d, "other-ca", "pyetcd-other-ca")
    both = "extendedKeyUsage=serverAuth,clientAuth\n"
    _leaf(d, "server", "ca", "127.0.0.1", "subjectAltName=IP:127.0.0.1\n" + both, 1)
    _leaf(d, "client", "ca", "client", "extendedKeyUsage=clientAuth\n", 2)
    _leaf(d, "other-client", "other-ca", "client", "extendedKeyUsage=clientAuth\n", 3)
    _leaf(d, "badsan", "ca", "10.9.9.9", "subjectAltName=IP:10.9.9.9\n" + both, 4)
    out = {}
    for n in ("ca", "other-ca", "server", "client", "other-client", "badsan"):
        out[n] = os.path.join(d, f"{n}.crt")
        out[f"{n}-key"] = os.path.join(d, f"{n}.key")
    return out
