"""Exhaustive (slow, manual) companion of test_wal_fuzz.py: every byte flip and every cut point.

    python tests/wal/exhaustive_check.py        # a few minutes; not collected by pytest

For small random logs (one segment and several), flips every byte of every record with three
XOR masks and truncates / zero-fills the tail at every offset, checking that a flip before the
last record is always refused, a flip in the last record is repaired as a torn tail, and a cut
never loses a whole record. Run it after any change to record.py.
"""
import os
import random
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from test_wal_fuzz import all_records, build_log, model, walk  # noqa: E402

from pyetcd.wal import WAL, WALCorruptError  # noqa: E402


def pristine(base, label, seed, saves, segment_size, end_with_marker=False):
    d = os.path.join(base, label)
    build_log(d, random.Random(seed), saves=saves, segment_size=segment_size)
    if end_with_marker:  # a snapshot marker's payload ends in zero bytes
        w, _rs = WAL.open(d, segment_size=segment_size)
        w.save_snapshot(1, 1)
        w.close()
    segs = walk(d)
    os.truncate(os.path.join(d, segs[-1][0]), segs[-1][1][-1][1])
    return d, segs


def entries_of(rs):
    return [(e.Index, e.Term, e.Data) for e in rs.entries]


def check_flips(base, d, segs):
    n = bad = 0
    for si, (name, recs) in enumerate(segs):
        for ri, (start, end, _t, _p) in enumerate(recs):
            is_last = si == len(segs) - 1 and ri == len(recs) - 1
            for pos in range(start, end):
                for mask in (0x01, 0x80, 0xFF):
                    n += 1
                    dst = os.path.join(base, "case")
                    shutil.copytree(d, dst)
                    with open(os.path.join(dst, name), "r+b") as f:
                        f.seek(pos)
                        b = f.read(1)[0]
                        f.seek(pos)
                        f.write(bytes([b ^ mask]))
                    try:
                        w, rs = WAL.open(dst, segment_size=65536)
                        w.close()
                        log, _hs, _s = model(all_records(segs, si, start))
                        if not is_last:
                            bad += 1
                            print("middle flip accepted:", name, pos, hex(mask))
                        elif entries_of(rs) != [(e.Index, e.Term, e.Data) for e in log] or not rs.repaired:
                            bad += 1
                            print("last-record flip mis-repaired:", name, pos, hex(mask))
                    except WALCorruptError as exc:
                        if is_last:
                            bad += 1
                            print("last-record flip refused:", name, pos, exc)
                    shutil.rmtree(dst)
    return n, bad


def check_cuts(base, d, segs):
    n = bad = 0
    name, recs = segs[-1]
    for cut in range(recs[0][1], recs[-1][1] + 1):
        for zero_fill in (False, True):
            n += 1
            dst = os.path.join(base, "case")
            shutil.copytree(d, dst)
            with open(os.path.join(dst, name), "r+b") as f:
                if zero_fill:
                    f.seek(cut)
                    f.write(bytes(recs[-1][1] - cut))
                else:
                    f.truncate(cut)
            kept = max(e for _s, e, _t, _p in recs if e <= cut)
            log, _hs, _s = model(all_records(segs, len(segs) - 1, kept))
            want = [(e.Index, e.Term, e.Data) for e in log]
            try:
                w, rs = WAL.open(dst, segment_size=65536)
                w.close()
                # Zero-filling bytes that were zero already may keep one more record.
                if entries_of(rs)[:len(want)] != want:
                    bad += 1
                    print("cut lost records:", cut, zero_fill)
            except WALCorruptError as exc:
                bad += 1
                print("cut refused:", cut, zero_fill, exc)
            shutil.rmtree(dst)
    return n, bad


def main():
    base = tempfile.mkdtemp(prefix="walx-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    try:
        total = failures = 0
        for label, seed, saves, size, marker in (("one", 7, 25, 1 << 20, False),
                                                 ("multi", 7, 25, 3000, False),
                                                 ("marker-last", 8, 12, 1 << 20, True)):
            d, segs = pristine(base, label, seed, saves, size, marker)
            n, bad = check_flips(base, d, segs)
            print("%s: %d flips, %d failures" % (label, n, bad))
            total, failures = total + n, failures + bad
        d, segs = pristine(base, "cuts", 9, 40, 3000)
        n, bad = check_cuts(base, d, segs)
        print("cuts: %d, %d failures" % (n, bad))
        total, failures = total + n, failures + bad
        print("total %d cases, %d failures" % (total, failures))
        return 1 if failures else 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
