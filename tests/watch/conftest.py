"""Fixtures for the watch tests.

Integration tests need pyetcd's server to serve the Watch service. Until the server wires it
(pyetcd.server.main still takes WatchService from pyetcd.api.pending, the UNIMPLEMENTED stub),
they are skipped; PYETCD_WATCH_SHIM=1 runs them against a pyetcd started through
tests/watch/wired_server.py, which wires the service the same way, without touching the server.
"""
import contextlib
import inspect
import os
import re
import sys

import pytest

from pyetcd.testing import procs

_SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wired_server.py")


def watch_is_wired() -> bool:
    """False while the server takes its WatchService from pyetcd.api.pending (the stub)."""
    import pyetcd.api.pending as pending
    import pyetcd.server.main as smain

    if getattr(pending, "WatchService", None) is None:
        return True
    return re.search(r"from pyetcd\.api\.pending import [^\n]*\bWatchService\b",
                     inspect.getsource(smain)) is None


USE_SHIM = os.environ.get("PYETCD_WATCH_SHIM") == "1" and not watch_is_wired()

needs_watch = pytest.mark.skipif(not (watch_is_wired() or USE_SHIM),
                                 reason="pyetcd.api.pending still stubs the Watch service "
                                        "(set PYETCD_WATCH_SHIM=1 to test through tests/watch/wired_server.py)")


@contextlib.contextmanager
def shim_command():
    """While inside, "pyetcd" processes start through wired_server.py (if USE_SHIM)."""
    if not USE_SHIM:
        yield
        return
    orig = procs.server_command
    procs.server_command = lambda kind: [sys.executable, _SHIM] if kind == "pyetcd" else orig(kind)
    try:
        yield
    finally:
        procs.server_command = orig


@contextlib.contextmanager
def start_pyetcd(base_dir, **kw):
    m = procs.member("pyetcd", str(base_dir), **kw)
    with shim_command():
        m.start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def pyetcd_watch(tmp_path):
    with start_pyetcd(tmp_path) as m:
        yield m


@pytest.fixture
def etcd_and_pyetcd(tmp_path):
    """Real etcd 3.5 and pyetcd (with Watch), each fresh, same flags."""
    with procs.start_member("etcd", str(tmp_path)) as e, start_pyetcd(tmp_path) as p:
        yield e, p
