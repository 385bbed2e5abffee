"""pyetcd-bench: command line.

Global flags are etcd's benchmark tool's (--endpoints, --conns, --clients, --dial-timeout) plus
--procs (worker processes) and --json. As with etcd's cobra-based tool they may be given
before or after the subcommand.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys

from . import report, runner
from .workloads import MODULES

# The streaming workloads (issue 3), registered here after the unary ones.
_STREAMING = ["pyetcd.benchtool.workloads.watch", "pyetcd.benchtool.workloads.watch_latency",
              "pyetcd.benchtool.workloads.lease_keepalive"]
ALL_MODULES = [*MODULES, *(m for m in _STREAMING if m not in MODULES)]


def _global_flags(p: argparse.ArgumentParser, suppress: bool) -> None:
    # On subparsers the defaults are SUPPRESS so a flag given before the subcommand survives.
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    p.add_argument("--endpoints", default=d("127.0.0.1:2379"),
                   help="gRPC endpoints, comma separated (host:port or http://host:port)")
    p.add_argument("--conns", type=int, default=d(1), help="Total number of gRPC connections")
    p.add_argument("--clients", type=int, default=d(1), help="Total number of gRPC clients")
    p.add_argument("--procs", type=int, default=d(0),
                   help="Worker processes the clients are spread over (0 = one per 16 clients, at most "
                        "the CPU count)")
    p.add_argument("--dial-timeout", type=float, default=d(10.0),
                   help="Seconds to wait for connections to come up")
    p.add_argument("--json", action="store_true", default=d(False),
                   help="Print the report as JSON instead of text")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyetcd-bench",
                                     description="A low-level benchmark tool for etcd-compatible servers")
    _global_flags(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in ALL_MODULES:
        mod = importlib.import_module(name)
        sp = sub.add_parser(mod.COMMAND, help=mod.HELP, description=mod.HELP)
        _global_flags(sp, suppress=True)
        mod.add_arguments(sp)
        sp.set_defaults(module=name)
    from . import compare

    sp = sub.add_parser("compare", help=compare.HELP, description=compare.HELP)
    compare.add_arguments(sp)
    sp.set_defaults(module=None, compare=True)
    return parser


def _normalize_endpoints(raw: str) -> list[str]:
    eps = []
    for e in raw.split(","):
        e = e.strip()
        for scheme in ("http://", "https://"):
            if e.startswith(scheme):
                e = e[len(scheme):]
        if e:
            eps.append(e.rstrip("/"))
    if not eps:
        raise ValueError("--endpoints is empty")
    return eps


def prepare(args) -> None:
    """Check and normalise parsed flags in place (raises ValueError on bad input)."""
    args.endpoints = (_normalize_endpoints(args.endpoints) if isinstance(args.endpoints, str)
                      else list(args.endpoints))
    if args.clients < 1:
        raise ValueError("--clients must be at least 1")
    if args.conns < 1:
        raise ValueError("--conns must be at least 1")
    if args.total < 0:
        raise ValueError("--total must not be negative")
    if args.procs < 0:
        raise ValueError("--procs must not be negative")
    if args.procs == 0:
        args.procs = runner.default_procs(args.clients, args.endpoints)
    mod = importlib.import_module(args.module)
    if hasattr(mod, "validate"):
        mod.validate(args)


def run_workload(args) -> report.Stats:
    """Run the workload named by ``args.module`` (after :func:`prepare`); returns its stats."""
    mod = importlib.import_module(args.module)
    st = mod.run(args)
    st.extra["config"] = config_of(args)
    return st


def config_of(args) -> dict:
    skip = {"module", "json", "compare"}
    return {k: v for k, v in vars(args).items() if k not in skip}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "compare", False):
        from . import compare

        return compare.main_args(args)
    try:
        prepare(args)
    except ValueError as e:
        parser.error(str(e))
    try:
        st = run_workload(args)
    except (RuntimeError, ConnectionError) as e:
        print(f"pyetcd-bench: {e}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(st.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report.format_text(st))
        mod = importlib.import_module(args.module)
        if hasattr(mod, "format_text"):  # a workload's own summary (e.g. watch creation)
            sys.stdout.write(mod.format_text(st))
    return 0


if __name__ == "__main__":
    sys.exit(main())
