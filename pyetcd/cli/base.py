"""Shared pieces of every command: exit codes, the error exit, and the per-run context
(parsed flags, ETCDCTL_* environment, output printer, lazily created client)."""
from __future__ import annotations

import os
import sys

EXIT_SUCCESS = 0
EXIT_ERROR = 1
EXIT_BAD_CONNECTION = 2
EXIT_INVALID_INPUT = 3
EXIT_BAD_FEATURE = 4
EXIT_INTERRUPTED = 5
EXIT_IO = 6
EXIT_BAD_ARGS = 128

OUTPUT_FORMATS = ("simple", "json", "protobuf", "fields", "table")


class CliExit(Exception):
    """Ends the command: message (if any) goes to stderr as `Error: <message>`."""

    def __init__(self, code: int, message: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message


def fail(code: int, err) -> "None":
    raise CliExit(code, str(err))


def log_json(level: str, msg: str, **fields) -> None:
    """A zap-style JSON log line on stderr, as etcdctl's logger prints warnings."""
    import json
    import time
    rec = {"level": level, "ts": time.time(), "caller": "pyetcdctl", "msg": msg, **fields}
    sys.stderr.write(json.dumps(rec) + "\n")


class Context:
    def __init__(self, cmd, parsed):
        self.cmd = cmd
        self.flags = parsed
        self.args = parsed.args
        self._display = None
        self._client = None
        self._discovered = None  # endpoints found by --discovery-srv (None: not looked up yet)
        self._env_done = False
        self.out = sys.stdout

    # --- global flags ---------------------------------------------------------------------
    def apply_env(self) -> None:
        """flags.SetPflagsFromEnv("ETCDCTL", inherited flags): an unset flag takes its ETCDCTL_*
        variable; a variable shadowed by a flag given on the command line is a fatal error."""
        if self._env_done:
            return
        self._env_done = True
        from pyetcd.cli.flags import set_value, FlagError
        inherited = self.cmd.inherited
        known = {}
        for fl in inherited:
            known["ETCDCTL_" + fl.name.upper().replace("-", "_")] = fl
        used = set()
        already = {k for k, fl in known.items() if fl.name in self.flags.changed}
        for key, fl in known.items():
            if key in already:
                continue
            val = os.environ.get(key, "")
            if val:
                used.add(key)
                try:
                    set_value(fl, self.flags, val)
                except FlagError:
                    pass  # etcdctl ignores the error of a bad variable value
        if self.cmd.name == "watch":
            used.update({"ETCDCTL_WATCH_KEY", "ETCDCTL_WATCH_RANGE_END"})
        for k, v in sorted(os.environ.items()):
            if not k.startswith("ETCDCTL_"):
                continue
            if k in already and v:
                log_json("fatal", "conflicting environment variable is shadowed by corresponding "
                         "command-line flag (either unset environment variable or disable flag))",
                         **{"environment-variable": k})
                raise CliExit(EXIT_ERROR)
            if k not in used and k not in already:
                log_json("warn", "unrecognized environment variable", **{"environment-variable": f"{k}={v}"})

    @property
    def hex(self) -> bool:
        return bool(self.flags.get("hex"))

    @property
    def display(self):
        if self._display is None:
            self.apply_env()
            from pyetcd.cli.printer import new_printer
            fmt = self.flags.get("write-out")
            if fmt not in OUTPUT_FORMATS:
                fail(EXIT_BAD_FEATURE, "unsupported output format")
            self._display = new_printer(fmt, self.hex)
        return self._display

    def command_timeout(self) -> float:
        return self.flags.get("command-timeout") / 1e9

    def client(self, endpoints=None):
        """mustClientFromCmd: env, printer, then a connected (and authenticated) client."""
        if endpoints is None and self._client is not None:
            return self._client
        main = endpoints is None
        if main:
            endpoints = self.endpoints()  # DNS discovery comes before --write-out checks, as in etcdctl
        self.display  # noqa: B018 - validates --write-out before any connection, like etcdctl
        from pyetcd.cli.client import client_from_flags
        c = client_from_flags(self.flags, endpoints)
        if main:
            self._client = c
        return c

    def endpoints(self, fresh: bool = False) -> list:
        """etcdctl's endpointsFromCmd: what DNS SRV discovery finds for --discovery-srv, else
        --endpoints. Found once per run unless fresh (etcdctl runs discovery again, and names
        dropped http:// endpoints again, where it builds a second client configuration)."""
        self.apply_env()
        domain = self.flags.get("discovery-srv")
        if not domain:
            return self.flag_endpoints()
        if self._discovered is None or fresh:
            from pyetcd.cli import srv
            try:
                self._discovered = srv.discover(domain, self.flags.get("discovery-srv-name"),
                                                self.flags.get("insecure-discovery"))
            except srv.DiscoveryError as e:
                fail(EXIT_ERROR, e)
        return list(self._discovered) or self.flag_endpoints()

    def flag_endpoints(self) -> list:
        self.apply_env()
        return list(self.flags.get("endpoints"))

    def close(self):
        if self._client is not None:
            self._client.close()
