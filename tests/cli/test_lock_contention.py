"""pyetcdctl lock: a second locker waits until the first one releases (the wait-for-delete path)."""
import subprocess
import sys
import time


def _lock(endpoint, script):
    return [sys.executable, "-m", "pyetcd.cli.main", "--endpoints", endpoint, "lock", "contended",
            "--", "sh", "-c", script]


def test_second_locker_waits_for_the_first(real_etcd, tmp_path):
    log = tmp_path / "order"
    first = subprocess.Popen(_lock(real_etcd.endpoint, f"echo first-start >> {log}; sleep 3; "
                                                       f"echo first-end >> {log}"))
    try:
        deadline = time.monotonic() + 20
        while not log.exists():  # the first holds the lock
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.1)
        second = subprocess.run(_lock(real_etcd.endpoint, f"echo second >> {log}"),
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr
        assert log.read_text().split() == ["first-start", "first-end", "second"]
    finally:
        first.kill()
        first.wait(10)
