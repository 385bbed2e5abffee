"""make-mirror: argument errors match etcdctl; a mirror copies existing keys and replays updates."""
import subprocess
import time

import pytest

from pyetcd.testing import procs

from .harness import _env, pyetcdctl_cmd


@pytest.mark.parametrize("args", [["make-mirror"], ["make-mirror", "a", "b"]])
def test_make_mirror_bad_args(pair, args):
    pair.compare(args)


def test_make_mirror_copies_and_follows(pair):
    src, dst = pair.b, pair.a
    for k, v in (("m/1", "one"), ("m/2", "two"), ("other", "x")):
        assert procs.etcdctl(src.endpoint, "put", k, v).returncode == 0
    p = subprocess.Popen(pyetcdctl_cmd() + ["--endpoints", src.endpoint, "make-mirror", "--prefix", "m/",
                                            "--dest-prefix", "copy/", dst.endpoint],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    try:
        got = b""
        for _ in range(100):  # poll until the base copy has landed
            got = procs.etcdctl(dst.endpoint, "get", "copy/", "--prefix").stdout.encode()
            if got.count(b"\n") >= 4:
                break
            time.sleep(0.2)
        assert got == b"copy/1\none\ncopy/2\ntwo\n"
        assert procs.etcdctl(src.endpoint, "put", "m/3", "three").returncode == 0
        assert procs.etcdctl(src.endpoint, "del", "m/1").returncode == 0
        for _ in range(100):
            got = procs.etcdctl(dst.endpoint, "get", "copy/", "--prefix").stdout.encode()
            if got == b"copy/2\ntwo\ncopy/3\nthree\n":
                break
            time.sleep(0.2)
        assert got == b"copy/2\ntwo\ncopy/3\nthree\n"
        assert procs.etcdctl(dst.endpoint, "get", "other").stdout == ""
    finally:
        p.terminate()
        p.wait(10)
