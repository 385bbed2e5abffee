"""etcd's Prometheus metrics, in the text exposition format 0.0.4, for `/metrics`.

Only metrics pyetcd can compute truthfully are exported, under etcd 3.5.1's names, types, HELP
texts and labels (taken from a running etcd 3.5.1). Families come out sorted by name, as
client_golang's registry writes them, and numbers are written as Go's
``strconv.FormatFloat(v, 'g', -1, 64)`` writes them (``2.7049984e+07``, ``20480``), because
scrapers and tools (etcdctl check datascale) parse etcd's spelling.

Process metrics are read from /proc/self as client_golang's process collector reads them.
Server metrics are gauges read from the member at scrape time, plus a few counters the member
keeps (leader changes, dropped proposals) and the ones owned here (health checks, WAL fsyncs).
"""
from __future__ import annotations

import math
import os
import resource
import threading
from decimal import Decimal

from pyetcd import ETCD_CLUSTER_VERSION, ETCD_VERSION

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# etcd: prometheus.ExponentialBuckets(0.001, 2, 14) for the WAL fsync and backend commit latencies.
DISK_BUCKETS = tuple(0.001 * 2 ** i for i in range(14))
DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024  # etcd's DefaultQuotaBytes


def go_float(v) -> str:
    """A number as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it."""
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    sign, digits, exp = Decimal(repr(v)).normalize().as_tuple()  # shortest round-trip digits
    ds = "".join(map(str, digits))
    nd = len(ds)
    dp = nd + exp                # the decimal point sits after `dp` digits
    eprec = 6                    # Go: %e when the exponent is < -4 or >= this
    if eprec > nd and nd >= dp:
        eprec = nd
    x = dp - 1
    out = "-" if sign else ""
    if x < -4 or x >= eprec:
        mant = ds[0] + ("." + ds[1:] if nd > 1 else "")
        return f"{out}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if dp <= 0:
        return f"{out}0.{'0' * -dp}{ds}"
    if dp >= nd:
        return out + ds + "0" * (dp - nd)
    return f"{out}{ds[:dp]}.{ds[dp:]}"


def _label_value(s: str) -> str:
    return s.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _help(s: str) -> str:
    return s.replace("\\", "\\\\").replace("\n", "\\n")


class Histogram:
    """A cumulative histogram; observe() may be called from any thread (the WAL's fsyncs run in
    an executor thread)."""

    def __init__(self, buckets=DISK_BUCKETS):
        self.buckets = tuple(buckets)
        self._counts = [0] * len(self.buckets)
        self._sum = 0.0
        self._count = 0
        self._lock = threading.Lock()

    def observe(self, v: float) -> None:
        with self._lock:
            for i, b in enumerate(self.buckets):
                if v <= b:
                    self._counts[i] += 1
                    break
            self._sum += v
            self._count += 1

    def samples(self, name: str) -> list:
        with self._lock:
            counts, total, n = list(self._counts), self._sum, self._count
        out, acc = [], 0
        for b, c in zip(self.buckets, counts):
            acc += c
            out.append((name + "_bucket", {"le": go_float(b)}, acc))
        out.append((name + "_bucket", {"le": "+Inf"}, n))
        out.append((name + "_sum", None, total))
        out.append((name + "_count", None, n))
        return out


class Exposition:
    """Families collected for one scrape: name -> (type, help, samples)."""

    def __init__(self):
        self.families: dict[str, tuple[str, str, list]] = {}

    def add(self, name: str, kind: str, help_: str, value=None, labels: dict | None = None,
            samples: list | None = None) -> None:
        self.families[name] = (kind, help_, samples if samples is not None else [(name, labels, value)])

    def render(self) -> bytes:
        lines = []
        for name in sorted(self.families):
            kind, help_, samples = self.families[name]
            lines.append(f"# HELP {name} {_help(help_)}")
            lines.append(f"# TYPE {name} {kind}")
            for sname, labels, value in samples:
                if labels:
                    ls = ",".join(f'{k}="{_label_value(v)}"' for k, v in labels.items())
                    sname = f"{sname}{{{ls}}}"
                lines.append(f"{sname} {go_float(value)}")
        return ("\n".join(lines) + "\n").encode()


# ---- process metrics (client_golang's process collector and etcd's os_fd_*) -------------------

_boot_time: float | None = None


def _read_boot_time() -> float:
    global _boot_time
    if _boot_time is None:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    _boot_time = float(line.split()[1])
                    break
            else:
                _boot_time = 0.0
    return _boot_time


def _limit(which: int) -> float:
    soft = resource.getrlimit(which)[0]
    return float(2 ** 64 - 1) if soft == resource.RLIM_INFINITY else float(soft)


def collect_process(e: Exposition) -> None:
    try:
        with open("/proc/self/stat") as f:
            stat = f.read()
    except OSError:
        return  # not Linux: client_golang exports no process metrics there either
    rest = stat[stat.rindex(")") + 2:].split()  # fields from the 3rd (state) on
    hz = os.sysconf("SC_CLK_TCK")
    utime, stime, start = int(rest[11]), int(rest[12]), int(rest[19])
    vsize, rss = int(rest[20]), int(rest[21])
    try:
        open_fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_fds = 0
    max_fds = _limit(resource.RLIMIT_NOFILE)
    e.add("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
          (utime + stime) / hz)
    e.add("process_open_fds", "gauge", "Number of open file descriptors.", float(open_fds))
    e.add("process_max_fds", "gauge", "Maximum number of open file descriptors.", max_fds)
    e.add("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", float(vsize))
    e.add("process_virtual_memory_max_bytes", "gauge", "Maximum amount of virtual memory available in bytes.",
          _limit(resource.RLIMIT_AS))
    e.add("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
          float(rss * resource.getpagesize()))
    e.add("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
          start / hz + _read_boot_time())
    e.add("os_fd_used", "gauge", "The number of used file descriptors.", float(open_fds))
    e.add("os_fd_limit", "gauge", "The file descriptor limit.", max_fds)


# ---- the member ---------------------------------------------------------------------------------

class ServerMetrics:
    """What `/metrics` reports about one member. The counters owned here are bumped by the
    `/health` handler and the WAL (its fsync observer)."""

    def __init__(self, server):
        self.server = server
        self.health_success = 0
        self.health_failures = 0
        self.wal_fsync = Histogram()
        self.backend_commit = Histogram()
        self._live_keys: tuple = (None, 0)  # ((kv id, revision), live key count)
        wal = getattr(server, "wal", None)
        if wal is not None and wal.fsync_observer is None:
            wal.fsync_observer = self.wal_fsync.observe
        self._watch_backend()
        server.restore_hooks.append(lambda _kv: self._watch_backend())  # a snapshot brings a new backend

    def _watch_backend(self) -> None:
        be = self.server.backend
        if be is not None and hasattr(type(be), "commit_observer"):
            be.commit_observer = self.backend_commit.observe

    def render(self) -> bytes:
        e = Exposition()
        collect_process(e)
        self.collect_server(e)
        return e.render()

    def collect_server(self, e: Exposition) -> None:
        s = self.server
        raft = s.raft
        lead = raft.lead
        e.add("etcd_server_has_leader", "gauge", "Whether or not a leader exists. 1 is existence, 0 is not.",
              1.0 if lead else 0.0)
        e.add("etcd_server_is_leader", "gauge", "Whether or not this member is a leader. 1 if is, 0 otherwise.",
              1.0 if lead and lead == s.member_id else 0.0)
        e.add("etcd_server_is_learner", "gauge", "Whether or not this member is a learner. 1 if is, 0 otherwise.",
              1.0 if s.is_learner else 0.0)
        e.add("etcd_server_leader_changes_seen_total", "counter", "The number of leader changes seen.",
              float(raft.leader_changes))
        e.add("etcd_server_proposals_committed_total", "gauge",
              "The total number of consensus proposals committed.", float(raft.commit))
        e.add("etcd_server_proposals_applied_total", "gauge",
              "The total number of consensus proposals applied.", float(raft.applied))
        e.add("etcd_server_proposals_pending", "gauge", "The current number of pending proposals to commit.",
              float(len(getattr(s, "_waiters", ()))))
        e.add("etcd_server_proposals_failed_total", "counter", "The total number of failed proposals seen.",
              float(raft.proposals_dropped + getattr(s, "proposals_timed_out", 0)))
        e.add("etcd_server_health_success", "counter", "The total number of successful health checks",
              float(self.health_success))
        e.add("etcd_server_health_failures", "counter", "The total number of failed health checks",
              float(self.health_failures))
        e.add("etcd_server_id", "gauge",
              "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
              1.0, {"server_id": f"{s.member_id:x}"})
        e.add("etcd_server_version", "gauge",
              "Which version is running. 1 for 'server_version' label with current version.",
              1.0, {"server_version": ETCD_VERSION})
        e.add("etcd_cluster_version", "gauge",
              "Which version is running. 1 for 'cluster_version' label with current cluster version",
              1.0, {"cluster_version": ".".join(ETCD_CLUSTER_VERSION.split(".")[:2])})
        q = s.cfg.quota_backend_bytes
        e.add("etcd_server_quota_backend_bytes", "gauge", "Current backend storage quota size in bytes.",
              float(DEFAULT_QUOTA_BYTES if q == 0 else max(q, 0)))  # etcd leaves it 0 when disabled
        be = s.backend
        e.add("etcd_mvcc_db_total_size_in_bytes", "gauge",
              "Total size of the underlying database physically allocated in bytes.", float(be.size()))
        e.add("etcd_mvcc_db_total_size_in_use_in_bytes", "gauge",
              "Total size of the underlying database logically in use in bytes.", float(be.size_in_use()))
        kv = s.kv
        key = (id(kv), kv.rev)  # counting walks the index (~25 ms per 100k keys): once per revision
        if self._live_keys[0] != key:
            self._live_keys = (key, kv.range(b"\x00", b"\x00", count_only=True).count)
        live = self._live_keys[1]
        e.add("etcd_debugging_mvcc_keys_total", "gauge", "Total number of keys.", float(live))
        e.add("etcd_debugging_mvcc_current_revision", "gauge", "The current revision of store.", float(kv.rev))
        e.add("etcd_debugging_mvcc_compact_revision", "gauge", "The revision of the last compaction in store.",
              float(kv.compact_rev))
        if getattr(be, "commit_observer", None) == self.backend_commit.observe:
            e.add("etcd_disk_backend_commit_duration_seconds", "histogram",
                  "The latency distributions of commit called by backend.",
                  samples=self.backend_commit.samples("etcd_disk_backend_commit_duration_seconds"))
        wal = getattr(s, "wal", None)
        if wal is not None:
            e.add("etcd_disk_wal_write_bytes_total", "gauge", "Total number of bytes written in WAL.",
                  float(wal.bytes_written))
            if wal.fsync_observer == self.wal_fsync.observe:
                e.add("etcd_disk_wal_fsync_duration_seconds", "histogram",
                      "The latency distributions of fsync called by WAL.",
                      samples=self.wal_fsync.samples("etcd_disk_wal_fsync_duration_seconds"))
