"""pytest-benchmark microbenchmarks of the WAL's CPU paths (no fsync: that is the disk's cost).

    python -m pytest bench/wal -q --benchmark-columns=median,ops --benchmark-sort=name

Runs on /dev/shm when available so the figures are CPU, not disk. Results: bench/wal/README.md.
"""
import os
import shutil
import tempfile

import pytest

from pyetcd.pb import raftpb
from pyetcd.wal import WAL
from pyetcd.wal import record as rec

BATCH = 100


@pytest.fixture
def wal_dir():
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    d = tempfile.mkdtemp(prefix="walbench-", dir=base)
    yield os.path.join(d, "wal")
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("size", [128, 4096])
def test_save_batch_nosync(benchmark, wal_dir, size):
    benchmark.group = "save %d entries, no sync" % BATCH
    w = WAL.create(wal_dir, b"bench", segment_size=1 << 40, preallocate_segments=False)
    data = os.urandom(size)
    ents = [raftpb.Entry(Term=1, Index=i + 1, Data=data) for i in range(BATCH)]
    hs = raftpb.HardState(term=1, vote=1, commit=1)
    benchmark(w.save, hs, ents, sync=False)
    w.close()


def test_frame_one_record(benchmark):
    benchmark.group = "framing"
    payload = raftpb.Entry(Term=1, Index=7, Data=os.urandom(128)).SerializeToString()

    def frame():
        buf = bytearray()
        rec.append_record(buf, rec.ENTRY, payload, 12345)
    benchmark(frame)


def test_replay_10k(benchmark, wal_dir):
    benchmark.group = "replay"
    w = WAL.create(wal_dir, b"bench", preallocate_segments=False)
    data = os.urandom(128)
    for start in range(1, 10001, 1000):
        w.save(raftpb.HardState(term=1, commit=start),
               [raftpb.Entry(Term=1, Index=i, Data=data) for i in range(start, start + 1000)], sync=False)
    w.close()

    def replay():
        wal, rs = WAL.open(wal_dir, preallocate_segments=False)
        wal.close()
        return len(rs.entries)
    assert benchmark(replay) == 10000
