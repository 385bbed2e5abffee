"""check perf / check datascale: not implemented yet (the command exists and says so)."""
from __future__ import annotations

from pyetcd.cli.base import EXIT_BAD_FEATURE, fail


def perf_cmd(ctx):
    fail(EXIT_BAD_FEATURE, "check perf is not implemented in pyetcdctl")


def datascale_cmd(ctx):
    fail(EXIT_BAD_FEATURE, "check datascale is not implemented in pyetcdctl")
