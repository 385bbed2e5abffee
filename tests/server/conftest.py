import pytest

from pyetcd.testing import procs


@pytest.fixture
def pyetcd_member(tmp_path):
    """A pyetcd single member on loopback ports, started with etcd's flags."""
    with procs.start_member("pyetcd", str(tmp_path)) as m:
        yield m


@pytest.fixture
def both(tmp_path):
    """Real etcd 3.5 and pyetcd side by side, each fresh, same flags."""
    with procs.start_member("etcd", str(tmp_path)) as e, procs.start_member("pyetcd", str(tmp_path)) as p:
        yield e, p
