"""Command-line flags and ETCD_* environment variables, with etcd 3.5's names and defaults.

Parsing follows Go's flag package as etcd uses it: ``-flag value``, ``--flag value``,
``--flag=value``; a bool flag alone means true. An unknown flag or a bad value prints etcd's
message and usage and exits 2. Every flag may also come from ``ETCD_<NAME>`` (upper case,
dashes as underscores); a variable that is also given as a flag is a fatal conflict, as in etcd.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass


class FlagError(Exception):
    """A bad command line: message printed as etcd prints it, exit status 2."""


class ConfigError(Exception):
    """A bad configuration found after parsing (conflicting env, bad URL...): exit status 1."""


_DUR_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds ("1h2m", "100ms", "0")."""
    s = text.strip()
    if s in ("0", "+0", "-0"):
        return 0.0
    sign = -1.0 if s.startswith("-") else 1.0
    s = s.lstrip("+-")
    pos, total = 0, 0.0
    for m in _DUR_RE.finditer(s):
        if m.start() != pos:
            raise ValueError(text)
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(text)
    return sign * total


def _parse_bool(text: str) -> bool:
    t = text.strip()
    if t in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if t in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise ValueError(text)


def _parse_uint(text: str) -> int:
    v = int(text.strip(), 0)
    if v < 0:
        raise ValueError(text)
    return v


def _parse_int(text: str) -> int:
    return int(text.strip(), 0)


def parse_urls(text: str) -> list[str]:
    """etcd's types.NewURLs over a comma-separated flag value (pyetcd.etcdfmt.membership.new_urls:
    Go's url.Parse, host:port, no path, sorted), as strings; ValueError with etcd's text."""
    from pyetcd.etcdfmt.membership import ConfigError as URLError
    from pyetcd.etcdfmt.membership import new_urls

    items = [raw for raw in text.split(",") if raw.strip()]
    if not items:
        return []
    try:
        return [str(u) for u in new_urls(items)]
    except URLError as e:
        raise ValueError(str(e)) from None


# name -> (kind, default, help). Kinds: str, uint, int, bool, duration, urls.
FLAGS: dict[str, tuple[str, object, str]] = {
    "name": ("str", "default", "Human-readable name for this member."),
    "data-dir": ("str", "", "Path to the data directory (default '${name}.etcd')."),
    "wal-dir": ("str", "", "Path to the dedicated wal directory."),
    "snapshot-count": ("uint", 100000, "Number of committed transactions to trigger a snapshot to disk."),
    "heartbeat-interval": ("uint", 100, "Time (in milliseconds) of a heartbeat interval."),
    "election-timeout": ("uint", 1000, "Time (in milliseconds) for an election to timeout."),
    "initial-election-tick-advance": ("bool", True, "Whether to fast-forward initial election ticks on boot."),
    "listen-peer-urls": ("urls", "http://localhost:2380", "List of URLs to listen on for peer traffic."),
    "listen-client-urls": ("urls", "http://localhost:2379", "List of URLs to listen on for client traffic."),
    "max-snapshots": ("uint", 5, "Maximum number of snapshot files to retain (0 is unlimited)."),
    "max-wals": ("uint", 5, "Maximum number of wal files to retain (0 is unlimited)."),
    "quota-backend-bytes": ("int", 0, "Raise alarms when backend size exceeds the given quota (0 defaults to low space quota)."),
    "backend-batch-interval": ("duration", 0.0, "BackendBatchInterval is the maximum time before commit the backend transaction."),
    "backend-batch-limit": ("int", 0, "BackendBatchLimit is the maximum operations before commit the backend transaction."),
    "max-txn-ops": ("uint", 128, "Maximum number of operations permitted in a transaction."),
    "max-request-bytes": ("uint", 1572864, "Maximum client request size in bytes the server will accept."),
    "grpc-keepalive-min-time": ("duration", 5.0, "Minimum interval duration that a client should wait before pinging server."),
    "grpc-keepalive-interval": ("duration", 7200.0, "Frequency duration of server-to-client ping to check if a connection is alive (0 to disable)."),
    "grpc-keepalive-timeout": ("duration", 20.0, "Additional duration of wait before closing a non-responsive connection (0 to disable)."),
    "socket-reuse-port": ("bool", False, "Enable to set socket option SO_REUSEPORT on listeners allowing rebinding of a port already in use."),
    "socket-reuse-address": ("bool", False, "Enable to set socket option SO_REUSEADDR on listeners allowing binding to an address in TIME_WAIT state."),
    "initial-advertise-peer-urls": ("urls", "http://localhost:2380", "List of this member's peer URLs to advertise to the rest of the cluster."),
    "initial-cluster": ("str", "default=http://localhost:2380", "Initial cluster configuration for bootstrapping."),
    "initial-cluster-state": ("str", "new", "Initial cluster state ('new' or 'existing')."),
    "initial-cluster-token": ("str", "etcd-cluster", "Initial cluster token for the etcd cluster during bootstrap."),
    "advertise-client-urls": ("urls", "http://localhost:2379", "List of this member's client URLs to advertise to the public."),
    "strict-reconfig-check": ("bool", True, "Reject reconfiguration requests that would cause quorum loss."),
    "pre-vote": ("bool", True, "Enable to run an additional Raft election phase."),
    "auto-compaction-retention": ("str", "0", "Auto compaction retention for mvcc key value store. 0 means disable auto compaction."),
    "auto-compaction-mode": ("str", "periodic", "interpret 'auto-compaction-retention' one of: periodic|revision."),
    "enable-v2": ("bool", False, "Accept etcd V2 client requests (not supported by pyetcd)."),
    "cert-file": ("str", "", "Path to the client server TLS cert file."),
    "key-file": ("str", "", "Path to the client server TLS key file."),
    "client-cert-auth": ("bool", False, "Enable client cert authentication."),
    "client-crl-file": ("str", "", "Path to the client certificate revocation list file."),
    "trusted-ca-file": ("str", "", "Path to the client server TLS trusted CA cert file."),
    "auto-tls": ("bool", False, "Client TLS using generated certificates."),
    "peer-cert-file": ("str", "", "Path to the peer server TLS cert file."),
    "peer-key-file": ("str", "", "Path to the peer server TLS key file."),
    "peer-client-cert-auth": ("bool", False, "Enable peer client cert authentication."),
    "peer-trusted-ca-file": ("str", "", "Path to the peer server TLS trusted CA file."),
    "peer-auto-tls": ("bool", False, "Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided."),
    "self-signed-cert-validity": ("uint", 1, "The validity period of the client and peer certificates that are automatically generated by etcd when you specify ClientAutoTLS and PeerAutoTLS, the unit is year, and the default is 1."),
    "peer-crl-file": ("str", "", "Path to the peer certificate revocation list file (not supported by pyetcd)."),
    "experimental-peer-skip-client-san-verification": ("bool", False, "Skip verification of SAN field in client certificate for peer connections."),
    "cors": ("str", "*", "Comma-separated white list of origins for CORS, or cross-origin resource sharing, (empty or * means allow all)."),
    "host-whitelist": ("str", "*", "Comma-separated acceptable hostnames from HTTP client requests, if server is not secure (empty means allow all)."),
    "auth-token": ("str", "simple", "Specify auth token specific options."),
    "bcrypt-cost": ("uint", 10, "Specify bcrypt algorithm cost factor for auth password hashing."),
    "auth-token-ttl": ("uint", 300, "The lifetime in seconds of the auth token."),
    "enable-pprof": ("bool", False, "Enable runtime profiling data via HTTP server."),
    "metrics": ("str", "basic", "Set level of detail for exported metrics, specify 'extensive' to include server side grpc histogram metrics."),
    "listen-metrics-urls": ("urls", "", "List of URLs to listen on for the metrics and health endpoints."),
    "logger": ("str", "zap", "Currently only supports 'zap' for structured logging."),
    "log-outputs": ("str", "default", "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets."),
    "log-level": ("str", "info", "Configures log level. Only supports debug, info, warn, error, panic, or fatal."),
    "experimental-initial-corrupt-check": ("bool", False, "Enable to check data corruption before serving any client/peer traffic."),
    "experimental-corrupt-check-time": ("duration", 0.0, "Duration of time between cluster corruption check passes."),
    "experimental-enable-lease-checkpoint": ("bool", False, "Enable leader to send regular checkpoints to other members to prevent reset of remaining TTL on leader change."),
    "experimental-lease-checkpoint-interval": ("duration", 300.0, "Duration of time between two checkpoint of lease TTLs (from etcd releases after 3.5.1)."),
    "experimental-compaction-batch-limit": ("int", 1000, "Sets the maximum revisions deleted in each compaction batch."),
    "experimental-watch-progress-notify-interval": ("duration", 600.0, "Duration of periodic watch progress notifications."),
    "experimental-warning-apply-duration": ("duration", 0.1, "Time duration after which a warning is generated if request takes more time."),
    "experimental-snapshot-catchup-entries": ("uint", 5000, "Number of entries for a slow follower to catch-up after compacting the raft storage entries."),
    "force-new-cluster": ("bool", False, "Force to create a new one member cluster."),
    "unsafe-no-fsync": ("bool", False, "Disables fsync, unsafe, will cause data loss."),
}

_PARSERS = {"str": str, "uint": _parse_uint, "int": _parse_int, "bool": _parse_bool,
            "duration": parse_duration, "urls": parse_urls}
_URL_FLAGS = [n for n, (k, _, _) in FLAGS.items() if k == "urls"]


@dataclass
class Config:
    values: dict
    explicit: set  # flags set on the command line or by environment

    def __getattr__(self, item):
        key = item.replace("_", "-")
        try:
            return self.values[key]
        except KeyError:
            raise AttributeError(item) from None

    def is_set(self, flag: str) -> bool:
        return flag in self.explicit

    @property
    def member_dir(self) -> str:
        return os.path.join(self.data_dir, "member")

    def initial_cluster_map(self) -> dict[str, list[str]]:
        """--initial-cluster as name -> sorted peer URLs."""
        out: dict[str, list[str]] = {}
        for part in self.values["initial-cluster"].split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise ConfigError(f"invalid --initial-cluster entry {part!r}: expected name=url")
            name, url = part.split("=", 1)
            try:
                out.setdefault(name, []).extend(parse_urls(url))
            except ValueError as e:
                raise ConfigError(f"invalid --initial-cluster URL: {e}") from None
        for urls in out.values():
            urls.sort()
        return out


def usage() -> str:
    lines = ["Usage:", "", "  pyetcd [flags]", "    Start a pyetcd server (etcd v3 API).", "",
             "  pyetcd --version", "    Show the version of pyetcd.", "", "Flags:"]
    for name, (kind, default, help_) in FLAGS.items():
        d = str(default).lower() if kind == "bool" else default
        lines.append(f"  --{name} '{d}'")
        lines.append(f"      {help_}")
    return "\n".join(lines) + "\n"


def _convert(name: str, text: str, source: str):
    kind = FLAGS[name][0]
    try:
        return _PARSERS[kind](text)
    except ValueError as e:  # URL lists say why, as etcd's types.NewURLs; Go's flag says "parse error"
        detail = str(e) if kind == "urls" and str(e) else "parse error"
        raise FlagError(f'invalid value "{text}" for {source}: {detail}') from None


def parse(argv: list[str], environ: dict | None = None) -> Config:
    """Parse argv (without the program name) and ETCD_* variables into a Config."""
    environ = os.environ if environ is None else environ
    values = {n: (parse_urls(d) if k == "urls" else d) for n, (k, d, _) in FLAGS.items()}
    explicit: set[str] = set()
    special = {"version": False, "help": False, "config-file": None}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--" or not arg.startswith("-") or arg in ("-", ""):
            raise FlagError(f"'{arg}' is not a valid flag")
        name = arg.lstrip("-")
        value = None
        if "=" in name:
            name, value = name.split("=", 1)
        if name in ("version", "help", "h"):
            special["help" if name == "h" else name] = True if value is None else _parse_bool(value)
            continue
        if name == "config-file":
            if value is None:
                if i >= len(argv):
                    raise FlagError(f"flag needs an argument: -{name}")
                value = argv[i]
                i += 1
            special["config-file"] = value
            continue
        if name not in FLAGS:
            raise FlagError(f"flag provided but not defined: -{name}")
        kind = FLAGS[name][0]
        if value is None:
            if kind == "bool":
                value = "true"
            else:
                if i >= len(argv):
                    raise FlagError(f"flag needs an argument: -{name}")
                value = argv[i]
                i += 1
        if kind == "bool":
            try:
                values[name] = _parse_bool(value)
            except ValueError:  # Go's flag package words a bad bool differently
                raise FlagError(f'invalid boolean value "{value}" for -{name}: parse error') from None
        else:
            values[name] = _convert(name, value, f"flag -{name}")
        explicit.add(name)
    if special["config-file"]:
        raise ConfigError("--config-file is not supported by pyetcd yet")
    # ETCD_* variables: after flags, so a conflict can be reported as etcd does.
    for name in FLAGS:
        env_name = "ETCD_" + name.upper().replace("-", "_")
        if env_name in environ:
            if name in explicit:
                raise ConfigError(
                    "conflicting environment variable is shadowed by corresponding command-line flag "
                    f"(either unset environment variable or disable flag)): {env_name}")
            values[name] = _convert(name, environ[env_name], env_name)
            explicit.add(name)
    cfg = Config(values, explicit)
    cfg.values["version"] = special["version"]
    cfg.values["help"] = special["help"]
    _finish(cfg)
    return cfg


def _finish(cfg: Config) -> None:
    v = cfg.values
    if not v["data-dir"]:
        v["data-dir"] = f"{v['name']}.etcd"
    if v["initial-cluster-state"] not in ("new", "existing"):
        raise ConfigError(f'invalid value "{v["initial-cluster-state"]}" for flag -initial-cluster-state: '
                          'valid values are "new", "existing"')
    if v["auto-compaction-mode"] not in ("periodic", "revision"):
        raise ConfigError(f"unknown auto-compaction-mode {v['auto-compaction-mode']!r}")
    if v["log-level"] not in ("debug", "info", "warn", "error", "panic", "fatal"):
        raise ConfigError(f"unknown log-level {v['log-level']!r}")
    hb, et = v["heartbeat-interval"], v["election-timeout"]
    if hb == 0 or et == 0:
        raise ConfigError("--heartbeat-interval and --election-timeout must be greater than 0")
    if 5 * hb > et:
        raise ConfigError(f"--election-timeout[{et}ms] should be at least as 5 times as "
                          f"--heartbeat-interval[{hb}ms]")
    if et > 50000:
        raise ConfigError(f"--election-timeout[{et}ms] is too long, and should be set less than 50000ms")
    if not cfg.is_set("initial-cluster") and cfg.is_set("name"):
        # etcd: the default initial cluster names the member by --name.
        v["initial-cluster"] = ",".join(f"{v['name']}={u}" for u in v["initial-advertise-peer-urls"])


def die(msg: str, code: int) -> None:
    sys.stderr.write(msg.rstrip("\n") + "\n")
    raise SystemExit(code)
