"""DNS SRV endpoint discovery for pyetcdctl --discovery-srv, as etcdctl 3.5.1 does it.

etcdctl (client/pkg/srv GetClient) looks up ``_etcd-client-ssl[-<name>]._tcp.<domain>`` (https)
and then ``_etcd-client[-<name>]._tcp.<domain>`` (http). Every SRV answer becomes the endpoint
``<scheme>://<target>:<port>``, target as DNS gives it (with its trailing dot). Only when both
lookups fail is it an error: ``dns lookup errors: <https error> and <http error>``.

The lookups go through a small stub resolver of our own that behaves as Go's pure-Go resolver does
for SRV names (etcdctl 3.5.1 is built with Go 1.16.3, and its resolver is what etcdctl users see):

- /etc/resolv.conf: up to three ``nameserver`` IPs (default 127.0.0.1 and ::1), ``search`` or
  ``domain`` (the last one wins; default: the host name's domain), ``options ndots:N timeout:N
  attempts:N rotate``. Defaults: ndots 1, timeout 5 s, attempts 2.
- Names to try: a name ending in '.' is tried alone; otherwise the name itself first when it has
  at least ndots dots, then name + each search domain, then the name itself if not tried first.
  The error reported is the last name's, under the name as asked (without a search suffix).
- Per name: ``attempts`` rounds over the servers. A query is one question, RD set, no EDNS,
  a fresh UDP socket, replies read into 512 bytes; a reply with TC set is asked again over TCP.
  NXDOMAIN (or no SRV answer) ends the name at once; other failures try the next server.
- Answers are sorted as RFC 2782 says (Go's byPriorityWeight): by priority, heavier first, then
  shuffled by weight within each priority.

Errors read as Go's net.DNSError: ``lookup <name> on <server>: <reason>`` with Go's reasons
(no such host, server misbehaving, lame referral, read udp ...: i/o timeout, ...).

Imported only when --discovery-srv is set, so other commands do not pay for it.
"""
from __future__ import annotations

import os
import random
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

TYPE_SRV = 33
CLASS_INET = 1
RCODE_SUCCESS, RCODE_SERVFAIL, RCODE_NXDOMAIN = 0, 2, 3
_UDP_READ = 512  # Go 1.16 reads UDP replies into 512 bytes (it sends no EDNS0 option)

NO_SUCH_HOST = "no such host"
SERVER_MISBEHAVING = "server misbehaving"
LAME_REFERRAL = "lame referral"
CANNOT_UNMARSHAL = "cannot unmarshal DNS message"
INVALID_RESPONSE = "invalid DNS response"
NO_ANSWER = "no answer from DNS server"


# --- configuration ---------------------------------------------------------------------------

@dataclass
class ResolvConf:
    """What the resolver reads from /etc/resolv.conf. servers are (ip, port) pairs."""
    servers: list = field(default_factory=lambda: [("127.0.0.1", 53), ("::1", 53)])
    search: list = field(default_factory=list)  # absolute names (trailing dot)
    ndots: int = 1
    timeout: float = 5.0
    attempts: int = 2
    rotate: bool = False
    _offset: int = 0

    def server_offset(self) -> int:
        if not self.rotate:
            return 0
        self._offset += 1
        return self._offset - 1


def _rooted(name: str) -> str:
    return name if name.endswith(".") else name + "."


def _leading_int(s: str) -> int:
    """Go's dtoi as resolv.conf parsing uses it: leading decimal digits, 0 when there are none."""
    n = 0
    for ch in s:
        if not "0" <= ch <= "9":
            break
        n = n * 10 + ord(ch) - 48
        if n >= 0xFFFFFF:
            return 0xFFFFFF
    return n


def _is_ip(s: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET, s)
        return True
    except OSError:
        pass
    try:
        socket.inet_pton(socket.AF_INET6, s.split("%", 1)[0])
        return True
    except OSError:
        return False


def _default_search() -> list:
    host = socket.gethostname()
    i = host.find(".")
    if 0 <= i < len(host) - 1:
        return [_rooted(host[i + 1:])]
    return []


def read_resolv_conf(path: str = "/etc/resolv.conf") -> ResolvConf:
    conf = ResolvConf(servers=[])
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("latin-1").splitlines()
    except OSError:
        lines = []
    for line in lines:
        if line[:1] in (";", "#"):
            continue
        words = line.split()
        if not words:
            continue
        key = words[0]
        if key == "nameserver":
            if len(words) > 1 and len(conf.servers) < 3 and _is_ip(words[1]):
                conf.servers.append((words[1], 53))
        elif key == "domain":
            if len(words) > 1:
                conf.search = [_rooted(words[1])]
        elif key == "search":
            conf.search = [_rooted(w) for w in words[1:]]
        elif key == "options":
            for opt in words[1:]:
                if opt.startswith("ndots:"):
                    conf.ndots = min(_leading_int(opt[6:]), 15)
                elif opt.startswith("timeout:"):
                    conf.timeout = float(max(_leading_int(opt[8:]), 1))
                elif opt.startswith("attempts:"):
                    conf.attempts = max(_leading_int(opt[9:]), 1)
                elif opt == "rotate":
                    conf.rotate = True
    if not conf.servers:
        conf.servers = [("127.0.0.1", 53), ("::1", 53)]
    if not conf.search:
        conf.search = _default_search()
    return conf


# --- names -----------------------------------------------------------------------------------

def is_domain_name(s: str) -> bool:
    """Go's isDomainName: the names Go's resolver agrees to look up (RFC 1035 / RFC 3696, plus
    '_' anywhere; at least one non-digit)."""
    n = len(s)
    if n == 0 or n > 254 or (n == 254 and not s.endswith(".")):
        return False
    last, non_numeric, part = ".", False, 0
    for ch in s:
        if "a" <= ch <= "z" or "A" <= ch <= "Z" or ch == "_":
            non_numeric = True
            part += 1
        elif "0" <= ch <= "9":
            part += 1
        elif ch == "-":
            if last == ".":
                return False
            part += 1
            non_numeric = True
        elif ch == ".":
            if last in (".", "-") or part > 63 or part == 0:
                return False
            part = 0
        else:
            return False
        last = ch
    if last == "-" or part > 63:
        return False
    return non_numeric


def name_list(name: str, conf: ResolvConf) -> list:
    """The absolute names to try for name, in order (search list and ndots)."""
    if name.endswith((".onion", ".onion.")):
        return []  # RFC 7686: never asked of DNS
    n = len(name)
    rooted = name.endswith(".")
    if n > 254 or (n == 254 and rooted):
        return []
    if rooted:
        return [name]
    enough_dots = name.count(".") >= conf.ndots
    name += "."
    out = [name] if enough_dots else []
    out += [name + s for s in conf.search if len(name) + len(s) <= 254]
    if not enough_dots:
        out.append(name)
    return out


# --- errors ----------------------------------------------------------------------------------

class DNSError(Exception):
    """Go's *net.DNSError."""

    def __init__(self, err: str, name: str, server: str = "", not_found: bool = False,
                 timeout: bool = False):
        super().__init__(err)
        self.err, self.name, self.server = err, name, server
        self.not_found, self.timeout = not_found, timeout

    def __str__(self) -> str:
        on = f" on {self.server}" if self.server else ""
        return f"lookup {self.name}{on}: {self.err}"


class DiscoveryError(Exception):
    pass


class _NetError(Exception):
    """A failed dial/read/write, worded as Go's *net.OpError (or io.EOF)."""

    def __init__(self, text: str, timeout: bool = False):
        super().__init__(text)
        self.timeout = timeout


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _errno_text(e: OSError) -> str:
    text = os.strerror(e.errno) if e.errno else str(e)
    return text[:1].lower() + text[1:]  # Go's errno strings are glibc's, lower-cased


# --- wire format -----------------------------------------------------------------------------

def _pack_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("latin-1")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def _pack_query(qid: int, name: str, qtype: int) -> bytes:
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _pack_name(name) + struct.pack(">HH", qtype, CLASS_INET)


class _Malformed(Exception):
    pass


def _unpack_name(msg: bytes, off: int, allow_pointers: bool = True) -> tuple[bytes, int]:
    """-> (presentation name with trailing dot, offset after the name where it is stored)."""
    name, cur, end, hops = b"", off, None, 0
    while True:
        if cur >= len(msg):
            raise _Malformed("name runs past the message")
        c = msg[cur]
        cur += 1
        kind = c & 0xC0
        if kind == 0:
            if c == 0:
                break
            if cur + c > len(msg):
                raise _Malformed("label runs past the message")
            name += msg[cur:cur + c] + b"."
            cur += c
        elif kind == 0xC0:
            if not allow_pointers:
                raise _Malformed("compressed SRV target")
            if cur >= len(msg):
                raise _Malformed("bad pointer")
            if end is None:
                end = cur + 1
            hops += 1
            if hops > 10:
                raise _Malformed("too many pointers")
            cur = (c & 0x3F) << 8 | msg[cur]
        else:
            raise _Malformed("reserved label type")
    name = name or b"."
    if len(name) > 255:
        raise _Malformed("name too long")
    return name, (end if end is not None else cur)


class _Reply:
    """A reply parsed the way Go's dnsmessage.Parser reads it: header and question at once,
    resource records on demand."""

    def __init__(self, msg: bytes):
        if len(msg) < 12:
            raise _Malformed("short header")
        self.msg = msg
        (self.id, self.flags, self.qdcount, self.ancount, _ns, _ar) = struct.unpack(">HHHHHH", msg[:12])
        self.rcode = self.flags & 0x000F
        self.off = 12
        if self.qdcount == 0:
            raise _Malformed("no question")
        self.qname, self.off = _unpack_name(msg, 12)
        if self.off + 4 > len(msg):
            raise _Malformed("short question")
        self.qtype, self.qclass = struct.unpack(">HH", msg[self.off:self.off + 4])
        self.off += 4
        self.index = 0  # next answer

    @property
    def truncated(self) -> bool:
        return bool(self.flags & 0x0200)

    @property
    def authoritative(self) -> bool:
        return bool(self.flags & 0x0400)

    @property
    def recursion_available(self) -> bool:
        return bool(self.flags & 0x0080)

    def matches(self, qid: int, name: str, qtype: int) -> bool:
        return (self.flags & 0x8000 and self.id == qid and self.qtype == qtype
                and self.qclass == CLASS_INET and self.qname.lower() == name.lower().encode("latin-1"))

    def only_one_question(self) -> bool:
        return self.qdcount == 1  # Go skips one more question and wants the section to end

    def answer_header(self):
        """-> (type, rdata offset, rdata length), or None when the answer section is done."""
        if self.index >= self.ancount:
            return None
        _name, off = _unpack_name(self.msg, self.off)
        if off + 10 > len(self.msg):
            raise _Malformed("short resource header")
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", self.msg[off:off + 10])
        return rtype, off + 10, rdlen

    def skip_answer(self, rdata_off: int, rdlen: int) -> None:
        if rdata_off + rdlen > len(self.msg):
            raise _Malformed("resource runs past the message")
        self.off = rdata_off + rdlen
        self.index += 1

    def srv(self, rdata_off: int, rdlen: int) -> tuple:
        if rdata_off + 6 > len(self.msg):
            raise _Malformed("short SRV")
        prio, weight, port = struct.unpack(">HHH", self.msg[rdata_off:rdata_off + 6])
        target, _ = _unpack_name(self.msg, rdata_off + 6, allow_pointers=False)
        self.off = rdata_off + rdlen
        self.index += 1
        return prio, weight, port, target


# --- transport -------------------------------------------------------------------------------

def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout()
    return left


def _open(net: str, server: tuple, deadline: float) -> socket.socket:
    ip, port = server
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM if net == "udp" else socket.SOCK_STREAM)
    try:
        s.settimeout(_remaining(deadline))
        s.connect((ip, port))
    except socket.timeout:
        s.close()
        raise _NetError(f"dial {net} {_hostport(ip, port)}: i/o timeout", timeout=True) from None
    except OSError as e:
        s.close()
        raise _NetError(f"dial {net} {_hostport(ip, port)}: connect: {_errno_text(e)}") from None
    return s


def _op_prefix(op: str, net: str, s: socket.socket) -> str:
    local, remote = s.getsockname()[:2], s.getpeername()[:2]
    return f"{op} {net} {_hostport(*local)}->{_hostport(*remote)}"


def _io(op: str, net: str, s: socket.socket, deadline: float, fn, *args):
    try:
        s.settimeout(_remaining(deadline))
        return fn(*args)
    except socket.timeout:
        raise _NetError(f"{_op_prefix(op, net, s)}: i/o timeout", timeout=True) from None
    except OSError as e:
        raise _NetError(f"{_op_prefix(op, net, s)}: {op}: {_errno_text(e)}") from None


def _udp_round_trip(s, deadline, qid, name, qtype, query) -> _Reply:
    _io("write", "udp", s, deadline, s.send, query)
    while True:  # replies that do not parse or do not match are ignored until the deadline
        data = _io("read", "udp", s, deadline, s.recv, _UDP_READ)
        try:
            reply = _Reply(data)
        except _Malformed:
            continue
        if reply.matches(qid, name, qtype):
            return reply


def _read_full(s, deadline, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = _io("read", "tcp", s, deadline, s.recv, n - len(buf))
        if not chunk:
            raise _NetError("unexpected EOF" if buf else "EOF")
        buf += chunk
    return buf


def _tcp_round_trip(s, deadline, qid, name, qtype, query) -> _Reply:
    _io("write", "tcp", s, deadline, s.sendall, struct.pack(">H", len(query)) + query)
    n = struct.unpack(">H", _read_full(s, deadline, 2))[0]
    try:
        reply = _Reply(_read_full(s, deadline, n))
    except _Malformed:
        raise _NetError(CANNOT_UNMARSHAL) from None
    if not reply.matches(qid, name, qtype):
        raise _NetError(INVALID_RESPONSE)
    return reply


def _exchange(server: tuple, name: str, qtype: int, timeout: float) -> _Reply:
    qid = random.getrandbits(16)
    query = _pack_query(qid, name, qtype)
    for net, trip in (("udp", _udp_round_trip), ("tcp", _tcp_round_trip)):
        deadline = time.monotonic() + timeout
        s = _open(net, server, deadline)
        try:
            reply = trip(s, deadline, qid, name, qtype, query)
        finally:
            s.close()
        if not reply.only_one_question():
            raise _NetError(INVALID_RESPONSE)
        if reply.truncated:  # RFC 5966: ask again over TCP
            continue
        return reply
    raise _NetError(NO_ANSWER)


# --- lookups ---------------------------------------------------------------------------------

def _check_header(reply: _Reply) -> str | None:
    """The reason a reply is no answer at all (Go's checkHeader), or None."""
    if reply.rcode == RCODE_NXDOMAIN:
        return NO_SUCH_HOST
    try:
        first = reply.answer_header()
    except _Malformed:
        return CANNOT_UNMARSHAL
    if (reply.rcode == RCODE_SUCCESS and not reply.authoritative and not reply.recursion_available
            and first is None):
        return LAME_REFERRAL
    if reply.rcode != RCODE_SUCCESS:
        return SERVER_MISBEHAVING
    return None


def _skip_to_answer(reply: _Reply, qtype: int) -> str | None:
    while True:
        try:
            h = reply.answer_header()
            if h is None:
                return NO_SUCH_HOST
            if h[0] == qtype:
                return None
            reply.skip_answer(h[1], h[2])
        except _Malformed:
            return CANNOT_UNMARSHAL


def _try_one_name(conf: ResolvConf, fqdn: str, qtype: int) -> tuple[_Reply, str]:
    last = None
    offset = conf.server_offset()
    n = len(conf.servers)
    for _ in range(conf.attempts):
        for j in range(n):
            server = conf.servers[(offset + j) % n]
            shown = _hostport(*server)
            try:
                reply = _exchange(server, fqdn, qtype, conf.timeout)
            except _NetError as e:
                last = DNSError(str(e), fqdn, shown, timeout=e.timeout)
                continue
            reason = _check_header(reply) or _skip_to_answer(reply, qtype)
            if reason is None:
                return reply, shown
            last = DNSError(reason, fqdn, shown, not_found=reason == NO_SUCH_HOST)
            if reason == NO_SUCH_HOST:
                raise last  # the name does not exist: asking another server will not help
    raise last


def lookup(name: str, qtype: int, conf: ResolvConf) -> tuple[_Reply | None, str]:
    if not is_domain_name(name):
        raise DNSError(NO_SUCH_HOST, name)
    err = None
    for fqdn in name_list(name, conf):
        try:
            return _try_one_name(conf, fqdn, qtype)
        except DNSError as e:
            err = e
    if err is None:
        return None, ""  # nothing to ask (a .onion name)
    err.name = name  # report the name asked for, not the last suffixed one
    raise err


def _sort_srv(records: list) -> list:
    """RFC 2782 order as Go gives it: sort.Sort by priority then weight (heavier first), then a
    weighted shuffle within each priority."""
    from pyetcd.server.apply.gosort import go_sort
    go_sort(records, lambda a, b: a[0] < b[0] or (a[0] == b[0] and a[1] > b[1]))
    out, i = [], 0
    while i < len(records):
        j = i
        while j < len(records) and records[j][0] == records[i][0]:
            j += 1
        group = records[i:j]
        total = sum(r[1] for r in group)
        k = 0
        while total > 0 and len(group) - k > 1:
            pick, acc = random.randrange(total), 0
            for m in range(k, len(group)):
                acc += group[m][1]
                if acc > pick:
                    group[k], group[m] = group[m], group[k]
                    break
            total -= group[k][1]
            k += 1
        out += group
        i = j
    return out


def lookup_srv(service: str, proto: str, domain: str, conf: ResolvConf) -> list:
    """net.LookupSRV: -> [(priority, weight, port, target bytes)] in RFC 2782 order."""
    target = f"_{service}._{proto}.{domain}" if service or proto else domain
    reply, server = lookup(target, TYPE_SRV, conf)
    records = []
    try:
        if reply is None:
            raise _Malformed("no reply")
        while True:
            h = reply.answer_header()
            if h is None:
                break
            if h[0] != TYPE_SRV:
                reply.skip_answer(h[1], h[2])
                continue
            records.append(reply.srv(h[1], h[2]))
    except _Malformed:
        raise DNSError(CANNOT_UNMARSHAL, domain, server) from None
    return _sort_srv(records)


# --- etcd's use of it ------------------------------------------------------------------------

_HOST_KEEP = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~!$&'()*+,;=:[]<>\"")


def _url(scheme: str, target: bytes, port: int) -> str:
    """url.URL{Scheme, Host: net.JoinHostPort(target, port)}.String()."""
    hp = (b"[" + target + b"]" if b":" in target else target) + b":" + str(port).encode()
    return scheme + "://" + "".join(chr(c) if c in _HOST_KEEP else f"%{c:02X}" for c in hp)


def srv_service(service: str, service_name: str, scheme: str) -> str:
    if scheme == "https":
        service += "-ssl"
    return f"{service}-{service_name}" if service_name else service


def get_client(service: str, domain: str, service_name: str = "", conf: ResolvConf | None = None) -> list:
    """client/pkg/srv GetClient: https endpoints, then http ones; an error only if both fail."""
    conf = conf if conf is not None else read_resolv_conf()
    endpoints, errors = [], []
    for scheme in ("https", "http"):
        try:
            records = lookup_srv(srv_service(service, service_name, scheme), "tcp", domain, conf)
        except DNSError as e:
            errors.append(e)
            continue
        endpoints += [_url(scheme, r[3], r[2]) for r in records]
    if len(errors) == 2:
        raise DiscoveryError(f"dns lookup errors: {errors[0]} and {errors[1]}")
    return endpoints


def discover(domain: str, service_name: str = "", insecure: bool = True,
             conf: ResolvConf | None = None, stderr=None) -> list:
    """etcdctl's endpointsFromFlagValue: the discovered endpoints, without the http:// ones
    (each named on stderr) unless insecure discovery is allowed."""
    eps = get_client("etcd-client", domain, service_name, conf)
    if insecure:
        return eps
    from pyetcd.cli.goutil import quote
    out = stderr or sys.stderr
    kept = []
    for ep in eps:
        if ep.startswith("http://"):
            out.write(f"ignoring discovered insecure endpoint {quote(ep)}\n")
            continue
        kept.append(ep)
    return kept
