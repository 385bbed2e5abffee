"""The command line: help, argument checking, and offline re-checking of a saved history."""
import subprocess
import sys

import pytest

from pyetcd.robustness.__main__ import main, parse
from pyetcd.robustness.history import History, Op


def test_help_lists_the_flags():
    r = subprocess.run([sys.executable, "-m", "pyetcd.robustness", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    for flag in ("--kind", "--members", "--duration", "--faults", "--seed", "--results-dir"):
        assert flag in r.stdout


def test_fault_selection():
    cfg, runs = parse(["--members", "1", "--no-proxy", "--runs", "3"])
    assert runs == 3 and "kill_leader" in cfg.faults
    assert "partition" not in cfg.faults and "kill_follower" not in cfg.faults
    cfg, _ = parse(["--faults", "kill_all, defrag"])
    assert cfg.faults == ["kill_all", "defrag"]
    with pytest.raises(SystemExit):
        parse(["--faults", "meteor_strike"])


def test_offline_check_of_a_saved_history(tmp_path, capsys):
    ok = History(ops=[Op(0, 0, "put", {"key": "a", "value": "v", "lease": 0}, 0, 1, "ok",
                         {"rev": 2}),
                      Op(1, 1, "range", {"key": "a", "serializable": False}, 2, 3, "ok",
                         {"rev": 2, "kv": ["v", 2, 2, 1]})])
    path = tmp_path / "history.json"
    path.write_text(ok.to_json())
    assert main(["--check", str(path)]) == 0
    ok.ops[1].result["kv"] = None      # the read misses the acknowledged put
    path.write_text(ok.to_json())
    assert main(["--check", str(path)]) == 1
    assert "[linearizability]" in capsys.readouterr().out
