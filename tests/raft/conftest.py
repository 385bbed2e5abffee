import os


def pytest_addoption(parser):
    parser.addoption("--rewrite", action="store_true", default=False,
                     help="rewrite the expected output of tests/raft/testdata/*.txt "
                          "(same as PYETCD_RAFT_REWRITE=1); review the diff by hand")


def pytest_configure(config):
    try:
        rewrite = config.getoption("--rewrite")
    except ValueError:  # option not registered (conftest not loaded at startup)
        rewrite = False
    if rewrite:
        os.environ["PYETCD_RAFT_REWRITE"] = "1"
