"""Side-by-side comparison: the same workloads against real etcd and pyetcd.

Each server is started in turn as a single member on loopback with the same flags and a fresh
data directory, the workloads run against it one after the other, and the server is stopped
before the next one starts, so the two never compete for the CPU (or, with --interleave, both
are up and the runs alternate between them, which evens out drifting background load on a
shared machine). The table shows
throughput and latency for each, and the ratios pyetcd/etcd (throughput: higher is better
for pyetcd; p50 latency: lower is better for pyetcd).

    pyetcd-bench compare                 # both servers
    pyetcd-bench compare --only etcd     # real etcd alone
    python bench/compare.py --markdown results.md --json results.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time

HELP = "Run the same workloads against real etcd and pyetcd and print a side-by-side table"
KINDS = ("etcd", "pyetcd")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", choices=KINDS, action="append",
                   help="Benchmark only this server (repeatable); default: both")
    p.add_argument("--total", type=int, default=10000,
                   help="Requests per multi-client workload")
    p.add_argument("--total-single", type=int, default=1000,
                   help="Requests for the single-client put")
    p.add_argument("--clients", type=int, default=64, help="Clients for the multi-client workloads")
    p.add_argument("--conns", type=int, default=8, help="gRPC connections for multi-client workloads")
    p.add_argument("--procs", type=int, default=0,
                   help="Load-generator worker processes (0 = pyetcd-bench's default)")
    p.add_argument("--val-size", type=int, default=256, help="Value size for puts")
    p.add_argument("--key-space-size", type=int, default=100000, help="Key space for puts")
    p.add_argument("--repeat", type=int, default=1,
                   help="Run each workload this many times and quote the medians")
    p.add_argument("--interleave", action="store_true",
                   help="Keep all servers up and alternate between them run by run "
                        "(robust to background load that drifts during the comparison)")
    p.add_argument("--workloads", default=None,
                   help="Comma-separated workload names (see --list); 'streaming' names the "
                        "optional watch/lease ones. Default: all but the optional ones")
    p.add_argument("--list", action="store_true", help="List the workloads and exit")
    p.add_argument("--server-args", default="",
                   help="Extra flags for both servers, e.g. '--quota-backend-bytes 8589934592'")
    p.add_argument("--work-dir", default=None,
                   help="Where data dirs and server logs go (default: a temporary directory)")
    p.add_argument("--members", type=int, default=1,
                   help="Cluster size: 1 (one member) or more (a loopback cluster; load goes to all members)")
    p.add_argument("--more-put-clients", type=int, default=0,
                   help="Also run put with this many clients (e.g. 256)")
    p.add_argument("--markdown", metavar="PATH", help="Also write the table as markdown")
    p.add_argument("--json", metavar="PATH", dest="json_out", help="Also write all results as JSON")


def workloads(a) -> list[tuple[str, list[str]]]:
    """(name, pyetcd-bench argv) for each workload of the comparison."""
    multi = ["--clients", str(a.clients), "--conns", str(a.conns)]
    put = ["--key-size", "8", "--val-size", str(a.val_size),
           "--key-space-size", str(a.key_space_size)]
    return [
        ("put-1", ["put", "--clients", "1", "--conns", "1", "--total", str(a.total_single), *put]),
        (f"put-{a.clients}", ["put", *multi, "--total", str(a.total), *put]),
        (f"range-s-{a.clients}", ["range", "foo", "--consistency", "s", *multi, "--total", str(a.total)]),
        (f"range-l-{a.clients}", ["range", "foo", "--consistency", "l", *multi, "--total", str(a.total)]),
        (f"txn-put-{a.clients}", ["txn-put", *multi, "--total", str(a.total), *put]),
    ] + ([(f"put-{a.more_put_clients}", ["put", "--clients", str(a.more_put_clients), "--conns",
                                         str(a.conns), "--total", str(a.total), *put])]
         if a.more_put_clients else []) + streaming_workloads(a)


# Watch and Lease workloads: run only when named in --workloads (or with --workloads streaming).
STREAMING_ALIAS = "streaming"


def streaming_workloads(a) -> list[tuple[str, list[str]]]:
    multi = ["--clients", str(a.clients), "--conns", str(a.conns)]
    return [
        # 10,000 watchers on 100 streams, 100 watchers per key: each put is 100 events.
        ("watch-100x100", ["watch", "--streams", "100", "--watch-per-stream", "100",
                           "--watched-key-total", "100", "--put-total", str(max(1, a.total // 20)),
                           "--put-rate", "100", "--clients", "4", "--conns", "4"]),
        ("watch-latency-10", ["watch-latency", "--clients", "10", "--conns", "1",
                              "--put-total", str(max(1, a.total_single // 5)), "--put-rate", "100"]),
        (f"lease-keepalive-{a.clients}", ["lease-keepalive", *multi, "--total", str(a.total)]),
    ]


def optional_names(a) -> set[str]:
    return {n for n, _ in streaming_workloads(a)}


def _proc_cpu_secs(pid: int) -> float | None:
    """utime+stime of a process (all threads) from /proc, or None off Linux."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "platform": platform.platform(),
            "python": platform.python_version()}


def _server_version(kind: str) -> str:
    from pyetcd.testing import procs
    import subprocess

    try:
        if kind == "etcd":
            out = subprocess.run([procs.etcd_bin("etcd"), "--version"], capture_output=True,
                                 text=True, timeout=10).stdout
            return out.splitlines()[0].split(":", 1)[1].strip() if out else "?"
        import pyetcd

        return getattr(pyetcd, "__version__", "dev")
    except Exception:  # noqa: BLE001 - the version is decoration, never a reason to fail
        return "?"


class Server:
    """One started server under test: its member, the workload results so far, or its failure."""

    def __init__(self, kind: str, a, log):
        self.kind, self.a, self.log = kind, a, log
        self.member = None
        self.cluster = None
        self.error: str | None = None
        self.runs: dict[str, list[dict]] = {}

    def start(self) -> bool:
        from pyetcd.testing import procs

        base = tempfile.mkdtemp(prefix=f"bench-{self.kind}-", dir=self.a.work_dir)
        try:
            if self.a.members > 1:
                from pyetcd.testing.cluster import Cluster

                # etcd's default timers, not the test launcher's short ones.
                self.cluster = Cluster(self.kind, base, size=self.a.members, proxy=False,
                                       extra_args=["--heartbeat-interval", "100", "--election-timeout",
                                                   "1000", "--snapshot-count", "100000",
                                                   *shlex.split(self.a.server_args)])
                self.cluster.start(timeout=60)
                self.member = self.cluster.members[self.cluster.leader()]
            else:
                self.member = procs.member(self.kind, base, extra_args=shlex.split(self.a.server_args))
                self.member.start(timeout=60)
            r = procs.etcdctl(self.member.endpoint, "put", "foo", "x" * self.a.val_size)
            if r.returncode != 0:
                raise RuntimeError(f"seeding key foo failed: {r.stderr.strip()}")
        except Exception as e:  # noqa: BLE001 - report and go on with the other server
            self.fail(f"failed to start: {e}")
            return False
        return True

    def fail(self, msg: str) -> None:
        self.error = msg
        tail = self.member.log_tail(20) if self.member is not None else ""
        self.log(f"{self.kind}: {msg}\n{tail}")
        self.stop()

    def stop(self) -> None:
        if getattr(self, "cluster", None) is not None:
            self.cluster.stop()
        elif self.member is not None:
            self.member.stop()

    def _endpoints(self) -> str:
        if getattr(self, "cluster", None) is not None:
            return ",".join(self.cluster.endpoints())
        return self.member.endpoint

    def _cpu(self) -> float | None:
        procs_ = ([m.proc for m in self.cluster.members.values()] if getattr(self, "cluster", None)
                  else [self.member.proc])
        total = 0.0
        for pr in procs_:
            c = _proc_cpu_secs(pr.pid) if pr is not None else None
            if c is None:
                return None
            total += c
        return total

    def run(self, name: str, argv: list[str]) -> None:
        """One run of one workload; failures mark the server failed instead of raising."""
        from . import main as cli

        if self.error is not None:
            return
        try:
            args = cli.build_parser().parse_args(
                ["--endpoints", self._endpoints(), "--procs", str(self.a.procs), *argv])
            cli.prepare(args)
            load = os.getloadavg()[0]
            cpu0 = self._cpu()
            st = cli.run_workload(args)
            cpu1 = self._cpu()
        except Exception as e:  # noqa: BLE001
            self.fail(f"{name} failed: {e}")
            return
        j = st.to_json()
        j["loadavg_1m_before"] = load
        if cpu0 is not None and cpu1 is not None and st.total_time > 0:
            j["server_cpu_util"] = (cpu1 - cpu0) / st.total_time
            if st.count:
                # CPU per request barely moves with background load, unlike req/s.
                j["server_cpu_us_per_req"] = (cpu1 - cpu0) / st.count * 1e6
        self.runs.setdefault(name, []).append(j)
        self.log(f"{self.kind:>6} {name:<12} {j['requests_per_sec']:10.1f} req/s  "
                 f"p50 {j['percentiles_secs'].get('p50', 0) * 1e3:7.2f} ms  "
                 f"errors {j['errors']}  client CPU {_pct(j.get('client_cpu_util'))}  "
                 f"server CPU {_pct(j.get('server_cpu_util'))} "
                 f"({j.get('server_cpu_us_per_req', 0):.0f} us/req)  load {load:.1f}")

    def results(self) -> dict:
        out = {name: summarize(runs) for name, runs in self.runs.items()}
        if self.error is not None:
            out["error"] = self.error
        out["version"] = _server_version(self.kind)
        return out


def run_all(kinds: list[str], a, names: list[str], log=print) -> dict:
    """Run the selected workloads on each server; returns kind -> name -> summary.

    Sequential (default): each server is started, runs everything, and is stopped before the
    next starts. Interleaved (--interleave): all servers are up at once (idle, a server costs
    next to nothing) and each run of each workload alternates between them, so background
    load that drifts during the comparison hits both sides alike.
    """
    wl = [(n, argv) for n, argv in workloads(a) if n in names]
    servers = [Server(k, a, log) for k in kinds]
    try:
        if a.interleave:
            for s in servers:
                s.start()
            for name, argv in wl:
                for _ in range(a.repeat):
                    for s in servers:
                        s.run(name, argv)
        else:
            for s in servers:
                if s.start():
                    for name, argv in wl:
                        for _ in range(a.repeat):
                            s.run(name, argv)
                s.stop()
    finally:
        for s in servers:
            s.stop()
    return {s.kind: s.results() for s in servers}


def _pct(x) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


def summarize(runs: list[dict]) -> dict:
    """Medians over repeated runs of one workload (a single run is its own median)."""
    def med(f):
        vals = [f(r) for r in runs if f(r) is not None]
        return statistics.median(vals) if vals else None

    return {
        "runs": len(runs),
        "requests_per_sec": med(lambda r: r["requests_per_sec"]),
        "p50_secs": med(lambda r: r["percentiles_secs"].get("p50")),
        "p90_secs": med(lambda r: r["percentiles_secs"].get("p90")),
        "p99_secs": med(lambda r: r["percentiles_secs"].get("p99")),
        "average_secs": med(lambda r: r["average_secs"]),
        "errors": sum(r["errors"] for r in runs),
        "client_cpu_util": med(lambda r: r.get("client_cpu_util")),
        "server_cpu_util": med(lambda r: r.get("server_cpu_util")),
        "server_cpu_us_per_req": med(lambda r: r.get("server_cpu_us_per_req")),
        "loadavg_1m": med(lambda r: r.get("loadavg_1m_before")),
        "detail": runs,
    }


def _ratio(num, den):
    if num is None or den is None or den == 0:
        return None
    return num / den


def table_rows(results: dict, names: list[str]) -> list[list[str]]:
    e, p = results.get("etcd", {}), results.get("pyetcd", {})

    def f(d, name, key, scale=1.0, fmt="{:.0f}"):
        v = d.get(name, {}).get(key) if isinstance(d.get(name), dict) else None
        return "-" if v is None else fmt.format(v * scale)

    rows = []
    for name in names:
        ev, pv = e.get(name, {}), p.get(name, {})
        rr = _ratio(pv.get("requests_per_sec"), ev.get("requests_per_sec"))
        lr = _ratio(pv.get("p50_secs"), ev.get("p50_secs"))
        cr = _ratio(pv.get("server_cpu_us_per_req"), ev.get("server_cpu_us_per_req"))
        rows.append([name,
                     f(e, name, "requests_per_sec"), f(p, name, "requests_per_sec"),
                     "-" if rr is None else f"{rr:.2f}",
                     f(e, name, "p50_secs", 1e3, "{:.2f}"), f(p, name, "p50_secs", 1e3, "{:.2f}"),
                     "-" if lr is None else f"{lr:.2f}",
                     f(e, name, "p99_secs", 1e3, "{:.2f}"), f(p, name, "p99_secs", 1e3, "{:.2f}"),
                     f(e, name, "server_cpu_us_per_req"), f(p, name, "server_cpu_us_per_req"),
                     "-" if cr is None else f"{cr:.1f}"])
    return rows


HEADER = ["workload", "etcd req/s", "pyetcd req/s", "ratio", "etcd p50 ms", "pyetcd p50 ms",
          "p50 ratio", "etcd p99 ms", "pyetcd p99 ms", "etcd us CPU/req", "pyetcd us CPU/req",
          "CPU ratio"]


def format_table(rows: list[list[str]]) -> str:
    widths = [max(len(HEADER[i]), *(len(r[i]) for r in rows)) for i in range(len(HEADER))]
    def line(cells):
        return "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                         for i, c in enumerate(cells))
    return "\n".join([line(HEADER), line(["-" * w for w in widths])] + [line(r) for r in rows]) + "\n"


def format_markdown(rows: list[list[str]], meta: dict) -> str:
    out = [f"Machine: {meta['machine']['cpus']} CPUs ({meta['machine']['cpu_model'] or 'unknown'}), "
           f"{meta['machine']['platform']}, Python {meta['machine']['python']}. "
           f"Servers: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ". "
           f"Median 1-minute load average before a run: {meta['load']}.",
           "",
           "| " + " | ".join(HEADER) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(HEADER) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out += ["", "ratio = pyetcd/etcd requests per second (higher is better for pyetcd); "
            "p50 ratio = pyetcd/etcd median latency (lower is better for pyetcd); "
            "us CPU/req = server CPU time (user+system, all threads) per request, which moves "
            "far less with background load than req/s does; CPU ratio = pyetcd/etcd."]
    return "\n".join(out) + "\n"


def main_args(a) -> int:
    names_all = [n for n, _ in workloads(a)]
    optional = optional_names(a)
    if a.list:
        for n, argv in workloads(a):
            print(f"{n:<20} pyetcd-bench {' '.join(argv)}{'   (optional)' if n in optional else ''}")
        return 0
    if not a.workloads:
        names = [n for n in names_all if n not in optional]
    else:
        names = []
        for n in (n.strip() for n in a.workloads.split(",")):
            names += sorted(optional, key=names_all.index) if n == STREAMING_ALIAS else [n]
    unknown = sorted(set(names) - set(names_all))
    if unknown:
        print(f"unknown workloads: {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    kinds = [k for k in KINDS if not a.only or k in a.only]
    if a.work_dir:
        os.makedirs(a.work_dir, exist_ok=True)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    started = time.time()
    results = run_all(kinds, a, names, log)
    rows = table_rows(results, names)
    loads = [r["loadavg_1m"] for res in results.values() for r in res.values()
             if isinstance(r, dict) and r.get("loadavg_1m") is not None]
    meta = {"machine": machine(), "load": f"{statistics.median(loads):.1f}" if loads else "?", "versions": {k: results[k].get("version", "?") for k in kinds},
            "started": started, "options": {k: v for k, v in vars(a).items()
                                            if k not in ("module", "compare")}}
    sys.stdout.write(format_table(rows))
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(format_markdown(rows, meta))
    if a.json_out:
        ratios = {n: {"throughput": _ratio(results.get("pyetcd", {}).get(n, {}).get("requests_per_sec"),
                                           results.get("etcd", {}).get(n, {}).get("requests_per_sec")),
                      "p50": _ratio(results.get("pyetcd", {}).get(n, {}).get("p50_secs"),
                                    results.get("etcd", {}).get(n, {}).get("p50_secs")),
                      "server_cpu_per_req": _ratio(
                          results.get("pyetcd", {}).get(n, {}).get("server_cpu_us_per_req"),
                          results.get("etcd", {}).get(n, {}).get("server_cpu_us_per_req"))}
                  for n in names}
        with open(a.json_out, "w") as f:
            json.dump({**meta, "workloads": dict(workloads(a)), "results": results,
                       "ratios": ratios}, f, indent=2)
    failed = [k for k in kinds if "error" in results[k]]
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="compare", description=HELP)
    add_arguments(p)
    return main_args(p.parse_args(argv))
