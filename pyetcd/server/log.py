"""JSON-lines logging on stderr, shaped like etcd's zap output.

    {"level":"info","ts":"2026-11-22T17:52:23.647Z","caller":"server/member.py:88","msg":"...", ...fields}
"""
from __future__ import annotations

import json
import os
import sys
import time

_LEVELS = {"debug": 0, "info": 1, "warn": 2, "error": 3, "panic": 4, "fatal": 5}


def _ts(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % int((now % 1) * 1000)


class Logger:
    def __init__(self, level: str = "info", stream=None):
        self.threshold = _LEVELS[level]
        self.stream = stream or sys.stderr

    def _log(self, level: str, msg: str, fields: dict) -> None:
        if _LEVELS[level] < self.threshold:
            return
        frame = sys._getframe(2)
        path = frame.f_code.co_filename
        caller = "/".join(path.split(os.sep)[-2:]) + f":{frame.f_lineno}"
        rec = {"level": level, "ts": _ts(time.time()), "caller": caller, "msg": msg}
        rec.update(fields)
        try:
            self.stream.write(json.dumps(rec, default=str, separators=(",", ":")) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed stderr must not take the server down

    def debug(self, msg: str, **fields) -> None:
        self._log("debug", msg, fields)

    def info(self, msg: str, **fields) -> None:
        self._log("info", msg, fields)

    def warn(self, msg: str, **fields) -> None:
        self._log("warn", msg, fields)

    def error(self, msg: str, **fields) -> None:
        self._log("error", msg, fields)

    def fatal(self, msg: str, **fields) -> None:
        self._log("fatal", msg, fields)
