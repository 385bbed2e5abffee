"""Kill a writer with SIGKILL at random moments: every acknowledged save survives reopen."""
import os
import random
import select
import signal
import subprocess
import sys
import time

import pytest

from pyetcd.wal import WAL

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_child import entry_data  # noqa: E402

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crash_child.py")
SEGMENT_SIZE = 256 * 1024  # small, so kills also land during segment cuts


def run_child_until_killed(d, seed, rng):
    """Start the writer, let it acknowledge at least one save, kill it at a random moment.

    Returns the highest index the child acknowledged.
    """
    proc = subprocess.Popen([sys.executable, CHILD, d, str(seed), str(SEGMENT_SIZE)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    acked = 0
    buf = b""
    kill_at = None
    deadline = time.monotonic() + 60  # generous: startup on a loaded machine
    try:
        while True:
            now = time.monotonic()
            if kill_at is not None and now >= kill_at:
                break
            if now > deadline:
                pytest.fail("crash child made no progress: %r" % proc.stderr.read1(4096))
            wait = 0.5 if kill_at is None else max(0.0, kill_at - now)
            ready, _, _ = select.select([proc.stdout], [], [], wait)
            if not ready:
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                pytest.fail("crash child exited: %r" % proc.stderr.read())
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line.startswith(b"ready"):
                    continue
                acked = max(acked, int(line))
                if kill_at is None:
                    kill_at = time.monotonic() + rng.uniform(0.0, 0.4)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Acknowledgements already in the pipe were sent before the kill: they count too.
        rest = buf + proc.stdout.read()
        proc.stdout.close()
        proc.stderr.close()
    for line in rest.split(b"\n")[:-1]:
        if line and not line.startswith(b"ready"):
            acked = max(acked, int(line))
    return acked


@pytest.mark.timeout(300)
def test_sigkill_never_loses_acknowledged_saves(tmp_path):
    d = str(tmp_path / "wal")
    rng = random.Random(4242)
    best = 0
    for round_ in range(5):
        acked = run_child_until_killed(d, rng.randrange(1 << 30), rng)
        assert acked >= best
        best = acked
        w, rs = WAL.open(d, segment_size=SEGMENT_SIZE)
        try:
            idxs = [e.Index for e in rs.entries]
            assert idxs == list(range(1, len(idxs) + 1))
            assert len(idxs) >= acked, "lost acknowledged entries %d..%d" % (len(idxs) + 1, acked)
            for e in rs.entries:
                assert e.Data == entry_data(e.Index, len(e.Data))
            assert rs.hard_state.commit >= acked
            assert rs.metadata == b"crash-test"
        finally:
            w.close()
    assert best > 0
    assert len([n for n in os.listdir(d) if n.endswith(".wal")]) >= 1
