"""The peer proxy learns a connection's sender from its first request; bytes that arrive before
that (an HTTP/2 preface, half a request) must wait, not be dropped: a connection opened during
a partition between two members on the same side has to work (a CI run once saw a majority
that could not elect because every redial between its members was cut this way)."""
import asyncio
import socket
import time

import pytest

from pyetcd.robustness.proxy import _H2_PREFACE, ProxyNet

hpack = pytest.importorskip("hpack")


def _echo_server():
    """A loopback TCP server (own thread) that echoes everything; returns (port, stop)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = []

    def run():
        conns = []
        while not stop:
            try:
                c, _ = srv.accept()
                c.setblocking(False)
                conns.append(c)
            except socket.timeout:
                pass
            for c in list(conns):
                try:
                    d = c.recv(65536)
                    if d:
                        c.sendall(d)
                    else:
                        conns.remove(c)
                except BlockingIOError:
                    pass
                except OSError:
                    conns.remove(c)
        srv.close()

    import threading
    threading.Thread(target=run, daemon=True).start()
    return srv.getsockname()[1], stop


def _exchange(port, chunks, wait=1.0):
    """Send chunks (a pause between them) through the proxy; what came back within wait."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    try:
        for c in chunks:
            s.sendall(c)
            time.sleep(0.1)
        got = b""
        deadline = time.monotonic() + wait
        want = sum(len(c) for c in chunks)
        while len(got) < want and time.monotonic() < deadline:
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            got += d
        return got
    finally:
        s.close()


def _h2_headers(member_hex):
    block = hpack.Encoder().encode([(":method", "POST"), (":path", "/peerpb.Peer/Stream"),
                                    ("x-server-from", member_hex)])
    settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    headers = len(block).to_bytes(3, "big") + b"\x01\x04\x00\x00\x00\x01" + block
    return [_H2_PREFACE + settings, headers]


@pytest.mark.parametrize("proto", ["http1", "h2"])
def test_connection_opened_during_a_partition(proto):
    port, stop = _echo_server()
    net = ProxyNet()
    try:
        pport = net.add("b", port)
        net.set_member_id(0xAA, "a")
        net.set_member_id(0xCC, "c")
        net.partition([{"a", "b"}, {"c"}])
        for who, linked in (("aa", True), ("cc", False)):
            if proto == "http1":
                chunks = [b"POST /raft/stream/message/bb HTTP/1.1\r\nHost: b\r\n",
                          b"X-Server-From: " + who.encode() + b"\r\n\r\npayload"]
            else:
                chunks = _h2_headers(who)
            got = _exchange(pport, chunks)
            if linked:
                assert got == b"".join(chunks)
            else:
                assert got == b""
        net.heal()
        assert _exchange(pport, [b"GET /members HTTP/1.1\r\n\r\n"]) == b"GET /members HTTP/1.1\r\n\r\n"
    finally:
        net.close()
        stop.append(1)
