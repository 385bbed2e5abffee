"""Peer TLS in one process: https listeners, TLS dialing, client-cert SAN checks, auto-TLS pinning,
and the self-signed certificates themselves (etcd's SelfCert)."""
import os
import stat
import subprocess

import grpc
import pytest

from pyetcd.testing import certs
from pyetcd.transport import ClusterInfoError, fetch_cluster_info
from pyetcd.transport.tls import TLSError, TLSInfo, check_cert_san, self_cert

from .helpers import CLUSTER, ListLogger, Node, msg, run, stop_all, wait_until

pytestmark = pytest.mark.skipif(not certs.have_openssl(), reason="needs the openssl command")

MEMBERS = [(1, "a", ["https://127.0.0.1:1"], [], False)]


@pytest.fixture(scope="module")
def c(tmp_path_factory):
    return certs.make(str(tmp_path_factory.mktemp("peer-certs")))


def _info(c, cert="server", auth=True, **kw):
    return TLSInfo(c[cert], c[f"{cert}-key"], c["ca"], client_cert_auth=auth, **kw)


async def _pair(info_a, info_b, **kw):
    a = await Node(1, tls=info_a, members_provider=lambda: (CLUSTER, MEMBERS), **kw).start("https://127.0.0.1:0")
    b = await Node(2, tls=info_b, **kw).start("https://127.0.0.1:0")
    a.t.add_peer(2, [b.url])
    b.t.add_peer(1, [a.url])
    return a, b


def test_tls_peers_exchange_messages_and_cluster_info(c):
    async def body():
        a, b = await _pair(_info(c), _info(c))
        try:
            assert a.url.startswith("https://127.0.0.1:") and b.url.startswith("https://")
            a.t.send([msg(1, 2, 5)])
            b.t.send([msg(2, 1, 6)])
            await wait_until(lambda: b.msgs and a.msgs, what="delivery both ways")
            assert [m.index for m in b.msgs] == [5] and [m.index for m in a.msgs] == [6]
            assert await fetch_cluster_info([a.url], tls=_info(c)) == (CLUSTER, MEMBERS)
            # --peer-client-cert-auth: a caller without a client certificate is refused.
            with pytest.raises(ClusterInfoError) as ei:
                await fetch_cluster_info([a.url], tls=TLSInfo(trusted_ca_file=c["ca"]))
            assert ei.value.errors[a.url].startswith("UNAVAILABLE")
            # A server certificate from a CA the caller does not trust is refused too.
            with pytest.raises(ClusterInfoError):
                await fetch_cluster_info([a.url], tls=TLSInfo(c["server"], c["server-key"], c["other-ca"]))
        finally:
            await stop_all([a, b])
    run(body())


def test_peer_client_cert_must_name_its_address(c):
    """etcd's checkSAN: a peer's client cert whose SANs do not cover the address it connects
    from is rejected (and logged as etcd logs it), unless SAN verification is skipped."""
    async def body():
        for check in (True, False):
            a, b = await _pair(_info(c, "badsan"), _info(c), check_client_san=check)
            try:
                a.t.send([msg(1, 2, 5)])
                if check:
                    await wait_until(lambda: 2 in a.unreachable, what="refusal")
                    assert not b.msgs and a.t.active_since(2) is None
                    rec = [f for lv, m, f in b.logger.records if lv == "warn" and m == "rejected connection"]
                    assert rec and rec[0]["error"] == "x509: certificate is valid for 10.9.9.9, not 127.0.0.1"
                    assert rec[0]["ip-addresses"] == ["10.9.9.9"]
                else:
                    await wait_until(lambda: b.msgs, what="delivery without SAN check")
            finally:
                await stop_all([a, b])
    run(body())


def test_check_cert_san_texts():
    async def body():
        assert await check_cert_san("127.0.0.1", [], []) is None
        assert await check_cert_san("127.0.0.1", ["10.0.0.1", "127.0.0.1"], []) is None
        assert await check_cert_san("::ffff:127.0.0.1", ["127.0.0.1"], []) is None
        assert (await check_cert_san("127.0.0.1", ["10.0.0.1", "10.0.0.2"], [])
                == "x509: certificate is valid for 10.0.0.1, 10.0.0.2, not 127.0.0.1")
        assert await check_cert_san("127.0.0.1", ["10.0.0.1"], ["localhost"]) is None
        err = await check_cert_san("127.0.0.1", [], ["host.invalid"])
        assert err.startswith('tls: "127.0.0.1" does not match any of DNSNames ["host.invalid"]')
    run(body())


def test_auto_tls_peers_pin_each_others_self_signed_certs(tmp_path):
    async def body():
        lg = ListLogger()
        ia = self_cert(lg, str(tmp_path / "a"), ["127.0.0.1:0"])
        ib = self_cert(lg, str(tmp_path / "b"), ["127.0.0.1:0"])
        a, b = await _pair(ia, ib)
        try:
            a.t.send([msg(1, 2, 7)])
            await wait_until(lambda: b.msgs, what="delivery between self-signed peers")
            assert await fetch_cluster_info([a.url], tls=ib) == (CLUSTER, MEMBERS)
        finally:
            await stop_all([a, b])
    run(body())


def test_self_cert_files_and_reuse(tmp_path):
    lg = ListLogger()
    d = tmp_path / "data" / "fixtures" / "client"
    info = self_cert(lg, str(d), ["127.0.0.1:2379", "localhost:2379"], 2)
    assert info.self_cert and info.cert_file == str(d / "cert.pem") and info.key_file == str(d / "key.pem")
    assert [m for _, m, _ in lg.records] == ["automatically generate certificates", "created cert file",
                                             "created key file"]
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(info.cert_file).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(info.key_file).st_mode) == 0o600
    assert open(info.key_file).read().startswith("-----BEGIN EC PRIVATE KEY-----")
    text = subprocess.run(["openssl", "x509", "-in", info.cert_file, "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    for want in ("Issuer: O = etcd", "Subject: O = etcd", "IP Address:127.0.0.1", "DNS:localhost",
                 "TLS Web Server Authentication", "CA:FALSE", "Digital Signature, Key Encipherment"):
        assert want in text, want
    assert str(info).startswith(f"cert = {info.cert_file}, key = {info.key_file}, "
                                f"client-cert={info.cert_file}, client-key={info.key_file}, ")
    before = open(info.cert_file, "rb").read()
    lg.records.clear()
    again = self_cert(lg, str(d), ["127.0.0.1:2379"])   # existing files are kept, silently
    assert again == info and lg.records == [] and open(info.cert_file, "rb").read() == before
    with pytest.raises(TLSError, match="selfSignedCertValidity is invalid,it should be greater than 0"):
        self_cert(lg, str(tmp_path / "other"), ["127.0.0.1:2379"], 0)


def test_tls_info_errors_are_gos(c, tmp_path):
    with pytest.raises(TLSError, match=r"^KeyFile and CertFile must both be present\[key: , cert: x\]$"):
        TLSInfo("x", "").server_credentials()
    missing = str(tmp_path / "nope.crt")
    with pytest.raises(TLSError, match=f"^open {missing}: no such file or directory$"):
        TLSInfo(missing, c["server-key"]).server_credentials()
    with pytest.raises(TLSError, match="^tls: private key does not match public key$"):
        TLSInfo(c["server"], c["client-key"]).server_credentials()
    assert isinstance(TLSInfo(c["server"], c["server-key"]).server_credentials(), grpc.ServerCredentials)
