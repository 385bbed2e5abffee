"""The test launcher itself works against real etcd: start, write, read back, stop."""
from pyetcd.testing import procs


def test_real_etcd_put_get(real_etcd):
    r = procs.etcdctl(real_etcd.endpoint, "put", "foo", "bar")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "OK"
    r = procs.etcdctl(real_etcd.endpoint, "get", "foo")
    assert r.stdout.split() == ["foo", "bar"]
