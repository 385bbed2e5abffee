"""Child process for test_wal_crash: append with sync=True and acknowledge each save on stdout.

usage: crash_child.py DIR SEED SEGMENT_SIZE

Entry i carries entry_data(i, size) so the parent can check contents without shared state.
One line "<last index>\n" is written after each save() returns; the parent kills us with SIGKILL.
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from pyetcd.pb import raftpb  # noqa: E402
from pyetcd.wal import WAL  # noqa: E402


def entry_data(index: int, size: int) -> bytes:
    unit = b"%d;" % index
    return (unit * (size // len(unit) + 1))[:max(size, len(unit))]


def main():
    d, seed, segment_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    if WAL.exists(d):
        w, rs = WAL.open(d, segment_size=segment_size)
        last = rs.entries[-1].Index if rs.entries else 0
    else:
        w = WAL.create(d, b"crash-test", segment_size=segment_size)
        last = 0
    out = sys.stdout.buffer
    out.write(b"ready %d\n" % last)
    out.flush()
    while True:
        n = rng.randint(1, 40)
        big = rng.random() < 0.3
        ents = [raftpb.Entry(Term=1, Index=last + k,
                             Data=entry_data(last + k, rng.randint(1000, 60000) if big else rng.randint(1, 300)))
                for k in range(1, n + 1)]
        w.save(raftpb.HardState(term=1, vote=1, commit=last + n), ents, sync=True)
        last += n
        out.write(b"%d\n" % last)
        out.flush()


if __name__ == "__main__":
    main()
