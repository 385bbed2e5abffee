"""Differential suite: help pages, global flags, ETCDCTL_* variables, bad input, unreachable server."""
import pytest

from pyetcd.cli.commands import ROOT


def _paths(cmd, prefix=()):
    for c in cmd.children:
        yield (*prefix, c.name)
        yield from _paths(c, (*prefix, c.name))


HELP = [[]] + [list(p) for p in _paths(ROOT) if p != ("help",)]


@pytest.mark.parametrize("path", HELP, ids=[" ".join(p) or "root" for p in HELP])
def test_help_pages(pair, path):
    pair.compare([*path, "--help"])


CASES = [
    ["foo"], ["gett"], ["--badflag", "get", "foo"], ["get", "foo", "--bad"], ["-w", "bogus", "get", "foo"],
    ["get", "foo", "--dial-timeout", "abc"], ["get", "foo", "--command-timeout=xyz"],
    ["get", "foo", "-wjson"], ["get", "foo", "-w=fields"], ["get", "foo", "-w"], ["get", "foo", "--limit"],
    ["get", "foo", "-z"], ["get", "foo", "---x"], ["help", "get"], ["help", "lease", "grant"], ["help"],
    ["get", "-h"], ["member", "list", "--help=false"], ["get", "foo", "--write-out", "json", "--hex"],
    ["--debug=false", "get", "foo"], ["get", "foo", "--insecure-skip-tls-verify"],
    ["endpoint", "health", "--cluster=maybe"], ["help", "bogus"], ["help", "lease", "bogus"],
    ["get", "foo", "--cert", "/nonexistent"], ["get", "foo", "--cacert", "/nonexistent"],
    ["get", "foo", "--user", "root", "--password", "x:y"], ["get", "foo", "--user", "root:pw"],
]


@pytest.mark.parametrize("args", CASES, ids=[" ".join(a) for a in CASES])
def test_global_flags(pair, args):
    pair.compare(args)


def test_env_vars(pair):
    pair.compare(["put", "foo", "bar"])
    for env in ({"ETCDCTL_WRITE_OUT": "json"}, {"ETCDCTL_HEX": "true"}, {"ETCDCTL_FOO": "1"},
                {"ETCDCTL_DIAL_TIMEOUT": "abc"}, {"ETCDCTL_COMMAND_TIMEOUT": "3s"}):
        pair.compare(["get", "foo"], env=env)
    # a flag and its variable together: fatal, exit 1
    pair.compare(["get", "foo", "-w", "fields"], env={"ETCDCTL_WRITE_OUT": "json"})
    ra, rb = pair.both("get", "foo", env={"ETCDCTL_ENDPOINTS": "127.0.0.1:1"})
    assert ra.rc == rb.rc == 1 and ra.out == rb.out == b""
    assert b"conflicting environment variable" in ra.err and b"conflicting environment variable" in rb.err
    # endpoints from the environment only
    ra = pair.etcdctl("get", "foo", own_endpoint=False, env={"ETCDCTL_ENDPOINTS": pair.a.endpoint})
    rb = pair.pyetcdctl("get", "foo", own_endpoint=False, env={"ETCDCTL_ENDPOINTS": pair.b.endpoint})
    assert (ra.rc, ra.out) == (rb.rc, rb.out) == (0, b"foo\nbar\n")


UNREACHABLE = [["get", "foo"], ["put", "a", "b", "-w", "json"], ["member", "list"], ["lease", "grant", "10"],
               ["endpoint", "health"], ["endpoint", "status"], ["alarm", "list"]]


@pytest.mark.parametrize("args", UNREACHABLE, ids=[" ".join(a) for a in UNREACHABLE])
def test_unreachable_endpoint(pair, args):
    pair.compare(["--endpoints", "127.0.0.1:1", "--command-timeout", "1s", "--dial-timeout", "500ms", *args],
                 own_endpoint=False)
