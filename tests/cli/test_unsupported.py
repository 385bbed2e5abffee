"""Flags pyetcdctl does not support end with etcdctl's error shape and exit code 1, not a crash."""
import subprocess
import sys


def test_discovery_srv_is_a_clear_error():
    r = subprocess.run([sys.executable, "-m", "pyetcd.cli.main", "--discovery-srv", "example.com", "get", "foo"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr.startswith("Error: --discovery-srv") and "Traceback" not in r.stderr
