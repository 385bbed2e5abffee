"""A tiny authoritative DNS server for discovery tests: SRV records, A records, and chosen failures.

Written for tests only (its own encoder, independent of pyetcd/cli/srv.py). It serves UDP and TCP
on one address. Zones map an absolute, lower-case name to a behaviour:

    {"srv": [(priority, weight, port, target), ...]}   SRV answers (plus A = 127.0.0.1 for A queries)
    {"rcode": 2}                                       an error rcode (2 SERVFAIL, 5 REFUSED, ...)
    {"drop": True}                                     never answer
    {"lame": True}                                     NOERROR, no answers, neither AA nor RA set
    {"compressed": [(p, w, port, target)]}             SRV whose target is a compression pointer

Names under one of ``a_suffixes`` answer A 127.0.0.1 (AAAA: NOERROR, empty). Anything else is
NXDOMAIN. A UDP answer longer than 512 bytes is replaced by a header+question with TC set, so the
client has to ask again over TCP.
"""
from __future__ import annotations

import socket
import struct
import threading

T_A, T_AAAA, T_SRV = 1, 28, 33


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def parse_question(msg: bytes):
    """-> (id, flags, qname (lower-case, absolute), qtype, end offset of the question) or None."""
    if len(msg) < 12:
        return None
    qid, flags, qd = struct.unpack(">HHH", msg[:6])
    if qd != 1:
        return None
    off, labels = 12, []
    while True:
        if off >= len(msg):
            return None
        n = msg[off]
        off += 1
        if n == 0:
            break
        if n > 63:
            return None
        labels.append(msg[off:off + n].decode("latin-1"))
        off += n
    if off + 4 > len(msg):
        return None
    qtype, _qclass = struct.unpack(">HH", msg[off:off + 4])
    return qid, flags, (".".join(labels) + ".").lower(), qtype, off + 4


class FakeDNS:
    def __init__(self, zones: dict, host: str = "127.0.0.1", port: int = 0,
                 a_suffixes=("srv.test.",)):
        self.zones = {k.lower(): v for k, v in zones.items()}
        self.a_suffixes = tuple(a_suffixes)
        self.queries: list[tuple[str, str, int]] = []  # (transport, name, qtype)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((host, port))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((host, self.port))
        self.tcp.listen(16)
        self.udp.settimeout(0.2)
        self.tcp.settimeout(0.2)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve_udp, daemon=True),
                         threading.Thread(target=self._serve_tcp, daemon=True)]

    def start(self) -> "FakeDNS":
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self.udp.close()
        self.tcp.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- answers -----------------------------------------------------------------------------
    def answer(self, msg: bytes, transport: str) -> bytes | None:
        q = parse_question(msg)
        if q is None:
            return None
        qid, qflags, qname, qtype, qend = q
        self.queries.append((transport, qname, qtype))
        question = msg[12:qend]
        zone = self.zones.get(qname)
        rd = qflags & 0x0100
        aa, ra = 0x0400, 0x0080
        answers, rcode, flags = [], 0, 0x8000 | aa | ra | rd
        if zone is not None and zone.get("drop"):
            return None
        if zone is not None and "rcode" in zone:
            rcode = zone["rcode"]
        elif zone is not None and zone.get("lame"):
            flags = 0x8000 | rd
        elif zone is not None and qtype == T_SRV and ("srv" in zone or "compressed" in zone):
            for prio, weight, port, target in zone.get("srv", []):
                rdata = struct.pack(">HHH", prio, weight, port) + encode_name(target)
                answers.append(b"\xc0\x0c" + struct.pack(">HHIH", T_SRV, 1, 60, len(rdata)) + rdata)
            for prio, weight, port, _target in zone.get("compressed", []):
                rdata = struct.pack(">HHH", prio, weight, port) + b"\xc0\x0c"
                answers.append(b"\xc0\x0c" + struct.pack(">HHIH", T_SRV, 1, 60, len(rdata)) + rdata)
        elif qname.endswith(self.a_suffixes) and qtype in (T_A, T_AAAA):
            if qtype == T_A:
                answers.append(b"\xc0\x0c" + struct.pack(">HHIH", T_A, 1, 60, 4) + bytes([127, 0, 0, 1]))
        elif zone is None:
            rcode = 3  # NXDOMAIN
        head = struct.pack(">HHHHHH", qid, flags | rcode, 1, len(answers), 0, 0)
        out = head + question + b"".join(answers)
        if transport == "udp" and len(out) > 512:
            out = struct.pack(">HHHHHH", qid, flags | rcode | 0x0200, 1, 0, 0, 0) + question
        return out

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                msg, addr = self.udp.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            out = self.answer(msg, "udp")
            if out is not None:
                try:
                    self.udp.sendto(out, addr)
                except OSError:
                    pass

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except (socket.timeout, OSError):
                continue
            with conn:
                conn.settimeout(2)
                try:
                    head = conn.recv(2, socket.MSG_WAITALL)
                    if len(head) < 2:
                        continue
                    n = struct.unpack(">H", head)[0]
                    msg = conn.recv(n, socket.MSG_WAITALL)
                    out = self.answer(msg, "tcp")
                    if out is not None:
                        conn.sendall(struct.pack(">H", len(out)) + out)
                except OSError:
                    pass
