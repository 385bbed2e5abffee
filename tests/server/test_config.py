"""Flags and ETCD_* variables: names, defaults and errors as etcd's (checked against the real binary)."""
import subprocess
import sys

import pytest

from pyetcd.server import config
from pyetcd.testing import procs


def test_defaults_are_etcds():
    cfg = config.parse([], environ={})
    assert cfg.name == "default" and cfg.data_dir == "default.etcd"
    assert cfg.listen_client_urls == ["http://localhost:2379"]
    assert cfg.initial_cluster_map() == {"default": ["http://localhost:2380"]}
    assert (cfg.heartbeat_interval, cfg.election_timeout, cfg.snapshot_count) == (100, 1000, 100000)
    assert (cfg.max_txn_ops, cfg.max_request_bytes) == (128, 1572864)
    assert cfg.initial_cluster_token == "etcd-cluster" and cfg.initial_cluster_state == "new"


def test_flag_forms_and_env():
    cfg = config.parse(["-name", "n1", "--snapshot-count=5", "--pre-vote=false", "--unsafe-no-fsync",
                        "--grpc-keepalive-min-time", "1m30s"], environ={"ETCD_MAX_TXN_OPS": "7"})
    assert cfg.name == "n1" and cfg.data_dir == "n1.etcd" and cfg.snapshot_count == 5
    assert cfg.pre_vote is False and cfg.unsafe_no_fsync is True and cfg.max_txn_ops == 7
    assert cfg.grpc_keepalive_min_time == 90.0
    assert cfg.initial_cluster == "n1=http://localhost:2380"  # named after --name, as etcd


@pytest.mark.parametrize("duration,seconds", [("100ms", 0.1), ("2h", 7200), ("1h2m3.5s", 3723.5), ("0", 0)])
def test_go_durations(duration, seconds):
    assert config.parse_duration(duration) == pytest.approx(seconds)


def _run(cmd, env=None):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)


@pytest.mark.parametrize("args", [["--bogus"], ["--heartbeat-interval", "abc"], ["--pre-vote=maybe"],
                                  ["--snapshot-count"]])
def test_bad_flags_fail_like_etcd(args, tmp_path):
    want = _run([procs.etcd_bin("etcd"), *args, "--data-dir", str(tmp_path / "e")])
    got = _run([sys.executable, "-m", "pyetcd.server.main", *args, "--data-dir", str(tmp_path / "p")])
    assert got.returncode == want.returncode == 2
    assert got.stderr.splitlines()[0] == want.stderr.splitlines()[0]


def test_env_conflicting_with_flag_is_fatal(tmp_path):
    import os
    env = dict(os.environ, ETCD_NAME="a")
    want = _run([procs.etcd_bin("etcd"), "--name", "b", "--data-dir", str(tmp_path / "e")], env)
    got = _run([sys.executable, "-m", "pyetcd.server.main", "--name", "b", "--data-dir", str(tmp_path / "p")], env)
    assert want.returncode == got.returncode == 1
    assert "conflicting environment variable is shadowed" in got.stderr
