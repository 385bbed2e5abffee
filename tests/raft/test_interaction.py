"""Data-driven interaction tests: every tests/raft/testdata/*.txt script.

Rewrite the expected outputs with PYETCD_RAFT_REWRITE=1, or
`python -m pytest tests/raft --rewrite`, and review the diff by hand.
"""
import glob
import os

import pytest

from raft_datadriven import run_file
from raft_env import Env

TESTDATA = os.path.join(os.path.dirname(__file__), "testdata")
FILES = sorted(glob.glob(os.path.join(TESTDATA, "*.txt")))


@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(p)[:-4] for p in FILES])
def test_interaction(path):
    env = Env()
    failures = run_file(path, env.handle)
    assert not failures, "\n\n".join(failures)
