"""make-mirror: not implemented yet (the command exists and says so)."""
from __future__ import annotations

from pyetcd.cli.base import EXIT_BAD_ARGS, EXIT_BAD_FEATURE, fail


def make_mirror_cmd(ctx):
    if len(ctx.args) != 1:
        fail(EXIT_BAD_ARGS, "make-mirror takes one destination argument")
    fail(EXIT_BAD_FEATURE, "make-mirror is not implemented in pyetcdctl")
