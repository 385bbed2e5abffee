"""Cluster membership as etcd's bootstrap flags describe it: URL lists (types.NewURLs), the
``name=url,...`` map (types.NewURLsMap), the checks of ServerConfig.VerifyBootstrap, and the
Member records (JSON as Go's json.Marshal of membership.Member) with their IDs.

Error texts are etcd 3.5.1's, checked against etcdutl.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field

from pyetcd.cli.gojson import go_string
from pyetcd.server.ids import cluster_id as _cluster_id
from pyetcd.server.ids import member_id as _member_id


class ConfigError(Exception):
    pass


# --- URLs ----------------------------------------------------------------------------------------
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_HOST_OK = set("-_.~!$&'()*+,;=:[]<>\"")
_HEX = re.compile(r"^%[0-9A-Fa-f]{2}$")


@dataclass(frozen=True)
class URL:
    """The parts of a Go url.URL that etcd's peer URLs use; str() is url.URL.String()."""
    scheme: str
    host: str = ""
    path: str = ""
    query: str = ""
    fragment: str = ""
    user: str = ""
    opaque: str = ""

    def __str__(self) -> str:
        s = self.scheme + ":"
        if self.opaque:
            s += self.opaque
        else:
            if self.host or self.user or self.scheme in ("http", "https") or self.path.startswith("//"):
                s += "//" + (self.user + "@" if self.user else "") + self.host
            s += self.path
        if self.query:
            s += "?" + self.query
        if self.fragment:
            s += "#" + self.fragment
        return s if self.scheme else s[1:]


def _go_parse_error(raw: str, msg: str) -> ConfigError:
    return ConfigError(f"parse {go_string(raw)}: {msg}")


def parse_url(raw: str) -> URL:
    """Go's url.Parse for the shapes peer URLs take (errors with Go's texts for the usual
    mistakes: control characters, a bad port, a bad character in the host)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise _go_parse_error(raw, "net/url: invalid control character in URL")
    rest, frag = (raw.split("#", 1) + [""])[:2]
    m = _SCHEME_RE.match(rest)
    scheme = ""
    if m:
        scheme, rest = m.group(1).lower(), rest[m.end():]
    elif rest.startswith(":"):
        raise _go_parse_error(raw, "missing protocol scheme")
    rest, query = (rest.split("?", 1) + [""])[:2]
    if not rest.startswith("/"):
        if scheme:  # a rootless path is opaque (RFC 3986)
            return URL(scheme, opaque=rest, query=query, fragment=frag)
        if ":" in rest.split("/", 1)[0]:
            raise _go_parse_error(raw, "first path segment in URL cannot contain colon")
    host = user = ""
    if rest.startswith("//"):
        auth, slash, path = rest[2:].partition("/")
        path = slash + path
        if "@" in auth:
            user, auth = auth.rsplit("@", 1)
        host = _parse_host(raw, auth)
    else:
        path = rest
    _check_escapes(raw, path)
    return URL(scheme, host, path, query, frag, user)


def _parse_host(raw: str, host: str) -> str:
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise _go_parse_error(raw, "missing ']' in host")
        port = host[end + 1:]
        if port and (not port.startswith(":") or not port[1:].isdigit() and port != ":"):
            raise _go_parse_error(raw, f"invalid port {go_string(port)} after host")
        return host
    i = host.rfind(":")
    if i >= 0:
        port = host[i:]
        if port != ":" and not port[1:].isdigit():
            raise _go_parse_error(raw, f"invalid port {go_string(port)} after host")
    for i, c in enumerate(host):  # url.unescape(host, encodeHost)
        if c == "%":
            esc = host[i:i + 3]
            if not _HEX.match(esc) or (int(esc[1], 16) < 8 and esc != "%25"):
                raise _go_parse_error(raw, f"invalid URL escape {go_string(esc)}")
        elif ord(c) < 0x80 and not (c.isalnum() or c in _HOST_OK):
            raise _go_parse_error(raw, f"invalid character {go_string(c)} in host name")
    return host


def _check_escapes(raw: str, s: str) -> None:
    for i, c in enumerate(s):
        if c == "%" and not _HEX.match(s[i:i + 3]):
            raise _go_parse_error(raw, f"invalid URL escape {go_string(s[i:i + 3])}")


def _split_host_port(hostport: str) -> tuple[str, str] | None:
    """net.SplitHostPort, None where it fails."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or not hostport[end + 1:].startswith(":"):
            return None
        return hostport[1:end], hostport[end + 2:]
    i = hostport.rfind(":")
    if i < 0 or ":" in hostport[:i]:
        return None
    return hostport[:i], hostport[i + 1:]


def new_urls(strs: list[str]) -> list[URL]:
    """types.NewURLs: each trimmed and parsed; http(s) need host:port and no path; sorted."""
    if not strs:
        raise ConfigError("no valid URLs given")
    out = []
    for s in strs:
        s = s.strip()
        u = parse_url(s)
        if u.scheme in ("http", "https"):
            if _split_host_port(u.host) is None:
                raise ConfigError(f'URL address does not have the form "host:port": {s}')
            if u.path:
                raise ConfigError(f"URL must not contain a path: {s}")
        elif u.scheme not in ("unix", "unixs"):
            raise ConfigError(f"URL scheme must be http, https, unix, or unixs: {s}")
        out.append(u)
    return sorted(out, key=str)


def new_urls_map(s: str) -> dict[str, list[URL]]:
    """types.NewURLsMap of ``name=url,name=url``: a name may repeat to give several URLs; an
    entry without "=" is a name with an empty URL (which then fails the scheme check)."""
    parsed: dict[str, list[str]] = {}
    for item in s.split(","):
        if not item:
            continue
        key, _, value = item.partition("=")
        parsed.setdefault(key, []).append(value)
    return {name: new_urls(urls) for name, urls in parsed.items()}


def urls_map_string(m: dict[str, list[URL]]) -> str:
    return ",".join(sorted(f"{name}={u}" for name, urls in m.items() for u in urls))


def _go_quote_list(xs: list[str]) -> str:
    return "[" + " ".join(go_string(x) for x in xs) + "]"


def _no_log(msg, fields, caller, stack=False, level="info"):
    pass


def _resolve(u: URL, log) -> URL:
    """netutil.resolveURL: a host name other than localhost is resolved to an address. One
    lookup here; etcd retries every second for up to 30 s, logging each failure."""
    if u.scheme in ("unix", "unixs"):
        return u
    hp = _split_host_port(u.host)
    if hp is None:
        return u
    host, port = hp
    if host == "localhost":
        return u
    try:
        ipaddress.ip_address(host)
        return u
    except ValueError:
        pass
    fields = {"url": str(u), "host": u.host}
    try:
        infos = socket.getaddrinfo(host, port or None, type=socket.SOCK_STREAM)
    except OSError as e:
        err = e.strerror or str(e)
        log("failed to resolve URL Host; returning", {**fields, "retry-interval": 1, "error": err},
            "netutil/netutil.go:131", level="warn")
        raise _ResolveError(f"failed to resolve {go_string(str(u))} ({err})") from None
    infos.sort(key=lambda i: i[0] != socket.AF_INET)  # Go's ResolveTCPAddr prefers IPv4
    addr = infos[0][4][0]
    hostport = f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
    log("resolved URL Host", {**fields, "resolved-addr": hostport}, "netutil/netutil.go:112")
    return URL(u.scheme, hostport, u.path, u.query, u.fragment, u.user)


class _ResolveError(Exception):
    pass


def _urls_equal(a: list[str], b: list[str], log) -> str | None:
    """netutil.URLStringsEqual: None when equal, else its error text."""
    if len(a) != len(b):
        return f"len({_go_quote_list(a)}) != len({_go_quote_list(b)})"
    ua, ub = [parse_url(x) for x in a], [parse_url(x) for x in b]
    if [str(x) for x in ua] == [str(x) for x in ub]:
        return None
    try:
        ra = [(_resolve(x, log), x) for x in ua]
        rb = [(_resolve(x, log), x) for x in ub]
    except _ResolveError as e:
        return str(e)
    ra.sort(key=lambda p: str(p[0]))
    rb.sort(key=lambda p: str(p[0]))
    for (x, px), (y, py) in zip(ra, rb):
        if str(x) != str(y):
            return (f"{go_string(str(x))}(resolved from {go_string(str(px))}) != "
                    f"{go_string(str(y))}(resolved from {go_string(str(py))})")
    return None


def verify_bootstrap(name: str, peer_urls: list[URL], cluster: dict[str, list[URL]], log=_no_log) -> None:
    """ServerConfig.VerifyBootstrap for a new member: the name is in the initial cluster, its
    advertised peer URLs match the cluster's, and no URL appears twice. ``log`` gets the
    lines etcd logs while resolving host names."""
    if name not in cluster:
        raise ConfigError(f"couldn't find local name {go_string(name)} in the initial cluster configuration")
    _advertise_matches_cluster(name, peer_urls, cluster, log)
    seen = set()
    for urls in cluster.values():
        for u in urls:
            if str(u) in seen:
                raise ConfigError(f"initial cluster {urls_map_string(cluster)} has duplicate url")
            seen.add(str(u))
    if not urls_map_string(cluster):
        raise ConfigError("initial cluster unset and no discovery URL found")


def _advertise_matches_cluster(name: str, peer_urls: list[URL], cluster: dict[str, list[URL]], log) -> None:
    urls = sorted(str(u) for u in cluster[name])
    apurls = sorted(str(u) for u in peer_urls)
    err = _urls_equal(apurls, urls, log)
    if err is None:
        return
    ap_set, init_set = set(apurls), set(urls)
    missing = [u for u in urls if u not in ap_set]
    if missing:
        mstr = ",".join(f"{name}={u}" for u in missing)
        raise ConfigError(f"--initial-cluster has {mstr} but missing from "
                          f"--initial-advertise-peer-urls={','.join(apurls)} ({err})")
    missing = [u for u in apurls if u not in init_set]
    umap = urls_map_string({name: peer_urls})
    if missing:
        raise ConfigError(f"--initial-advertise-peer-urls has {','.join(missing)} but missing from "
                          f"--initial-cluster={umap}")
    raise ConfigError(f"failed to resolve {','.join(apurls)} to match --initial-cluster={umap} ({err})")


# --- members -------------------------------------------------------------------------------------
@dataclass
class Member:
    id: int
    name: str
    peer_urls: list[str]
    client_urls: list[str] = field(default_factory=list)
    is_learner: bool = False

    def to_json(self) -> str:
        """json.Marshal(membership.Member): id, then the embedded RaftAttributes (peerURLs,
        isLearner omitempty), then Attributes (name, clientURLs, both omitempty)."""
        parts = [f'"id":{self.id}', f'"peerURLs":{self._list(self.peer_urls)}']
        if self.is_learner:
            parts.append('"isLearner":true')
        if self.name:
            parts.append(f'"name":{go_string(self.name)}')
        if self.client_urls:
            parts.append(f'"clientURLs":{self._list(self.client_urls)}')
        return "{" + ",".join(parts) + "}"

    def raft_attributes_json(self) -> str:
        out = f'{{"peerURLs":{self._list(self.peer_urls)}'
        return out + (',"isLearner":true}' if self.is_learner else "}")

    @staticmethod
    def _list(xs: list[str]) -> str:
        return "null" if xs is None else "[" + ",".join(go_string(x) for x in xs) + "]"


def cluster_from_urls_map(token: str, cluster: dict[str, list[URL]]) -> tuple[int, list[Member]]:
    """membership.NewClusterFromURLsMap: one member per name (ID from its sorted peer URLs and
    the token), the cluster ID from the member IDs. Members are returned in ID order, which is
    the order etcd adds them in (RaftCluster.Members / MemberIDs sort by ID)."""
    members: dict[int, Member] = {}
    for name, urls in cluster.items():
        strs = sorted(str(u) for u in urls)
        mid = _member_id(strs, token)
        if mid in members:
            raise ConfigError(f"member exists with identical ID {members[mid].to_json()}")
        if mid == 0:
            raise ConfigError(f"cannot use {mid:x} as member id")
        members[mid] = Member(mid, name, strs)
    ordered = [members[i] for i in sorted(members)]
    return _cluster_id(list(members)), ordered
