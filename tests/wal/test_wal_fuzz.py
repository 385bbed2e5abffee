"""Seeded fuzzing of WAL recovery: truncations, zero-filled tails and single byte flips.

The expected outcome of every case is computed from an independent walk of the pristine files
(record boundaries from the headers, contents decoded here) and a tiny model of raft log replay,
not from the WAL's own reader.
"""
import os
import random
import shutil
import struct

import pytest

from pyetcd.pb import raftpb
from pyetcd.wal import WAL, WALCorruptError

SEED = 20240607
HDR = struct.Struct("<IIBI")
ENTRY, STATE, SNAPSHOT = 2, 3, 5
SEG = 64 * 1024  # preallocation when a case reopens a copy


def build_log(dirpath, rng, *, saves, segment_size):
    """Write a random but valid log: batches, hard states, conflicts, snapshot markers."""
    w = WAL.create(dirpath, b"fuzz-meta", segment_size=segment_size)
    last, term, commit = 0, 1, 0
    for _ in range(saves):
        r = rng.random()
        if r < 0.08 and last > 3:
            w.save_snapshot(rng.randint(1, commit or 1), term)
            continue
        if r < 0.16 and last > 3:
            # A new leader overwrites the uncommitted suffix.
            term += 1
            start = rng.randint(max(commit + 1, last - 3), last)
        else:
            start = last + 1
        n = rng.randint(1, 4)
        ents = [raftpb.Entry(Term=term, Index=start + k, Data=rng.randbytes(rng.randint(1, 300)))
                for k in range(n)]
        last = start + n - 1
        commit = min(last, commit + rng.randint(0, 2))
        hs = raftpb.HardState(term=term, vote=rng.randint(1, 3), commit=commit)
        w.save(hs if rng.random() < 0.8 else None, ents, sync=False)
    w.close()


def walk(dirpath):
    """[(segment name, [(start, end, type, payload)])] read straight from the headers."""
    out = []
    for name in sorted(n for n in os.listdir(dirpath) if n.endswith(".wal")):
        with open(os.path.join(dirpath, name), "rb") as f:
            data = f.read()
        recs, off = [], 0
        while off + HDR.size <= len(data):
            _crc, length, rtype, _prev = HDR.unpack_from(data, off)
            if rtype == 0:
                break  # preallocated zeros
            end = off + HDR.size + length
            recs.append((off, end, rtype, data[off + HDR.size:end]))
            off = end
        out.append((name, recs))
    return out


def model(records):
    """Replay (type, payload) pairs the way raft expects: later index i replaces entries >= i."""
    log, hs, snaps = [], raftpb.HardState(), []
    for rtype, payload in records:
        if rtype == ENTRY:
            e = raftpb.Entry.FromString(payload)
            del log[e.Index - 1:]
            assert len(log) == e.Index - 1
            log.append(e)
        elif rtype == STATE:
            hs = raftpb.HardState.FromString(payload)
        elif rtype == SNAPSHOT:
            snaps.append(struct.unpack("<QQ", payload))
    return log, hs, snaps


@pytest.fixture(scope="module", params=[("one-segment", 1 << 20), ("segments", 3000)])
def pristine(request, tmp_path_factory):
    label, segment_size = request.param
    d = str(tmp_path_factory.mktemp("pristine-" + label) / "wal")
    build_log(d, random.Random(SEED), saves=60, segment_size=segment_size)
    segs = walk(d)
    # Drop the tail's preallocated zeros so each case copies kilobytes, not a megabyte
    # (zero-filled tails get their own cases below).
    os.truncate(os.path.join(d, segs[-1][0]), segs[-1][1][-1][1])
    return d, segs


def all_records(segs, upto_seg=None, upto_end=None):
    out = []
    for si, (_name, recs) in enumerate(segs):
        for start, end, rtype, payload in recs:
            if upto_seg is not None and si == upto_seg and end > upto_end:
                return out
            out.append((rtype, payload))
    return out


@pytest.fixture
def scratch(tmp_path):
    """Where cases are copied: tmpfs when there is one. These tests check the format logic,
    not the disk, and on a shared machine every create/unlink on ext4 can queue behind other
    processes' journal commits."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    if base is None:
        yield tmp_path
        return
    import pathlib
    import tempfile
    d = tempfile.mkdtemp(prefix="pyetcd-walfuzz-", dir=base)
    try:
        yield pathlib.Path(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def copy_to(src, scratch, tag):
    dst = str(scratch / tag)
    shutil.copytree(src, dst)
    return dst


def check_opens_to(d, expected_records, *, repaired):
    log, hs, snaps = model(expected_records)
    w, rs = WAL.open(d, segment_size=SEG)
    try:
        assert [(e.Index, e.Term, e.Data) for e in rs.entries] == \
               [(e.Index, e.Term, e.Data) for e in log]
        assert rs.hard_state == hs
        assert rs.snapshots == snaps
        if repaired is not None:
            assert rs.repaired == repaired
        assert w.last_index >= (log[-1].Index if log else 0)
    finally:
        w.close()
    return log


def test_pristine_log_replays_fully(pristine):
    d, segs = pristine
    assert sum(len(r) for _n, r in segs) > 60
    check_opens_to(d, all_records(segs), repaired=False)


def test_truncated_tail_opens_to_prefix(pristine, scratch):
    d, segs = pristine
    rng = random.Random(SEED + 1)
    tail_name, tail_recs = segs[-1]
    tail_len = tail_recs[-1][1]
    for case in range(80):
        cut = rng.randint(tail_recs[0][1], tail_len)  # keep at least the segment's head record
        zero_fill = case % 2 == 1  # zero-filled (preallocated) space instead of a short file
        dst = copy_to(d, scratch, "t%d" % case)
        path = os.path.join(dst, tail_name)
        with open(path, "rb") as f:
            orig = f.read()
        with open(path, "r+b") as f:
            if zero_fill:
                f.seek(cut)
                f.write(bytes(tail_len - cut))
            else:
                f.truncate(cut)
        with open(path, "rb") as f:
            now = f.read()
        # Records survive while their bytes are unchanged (zero-filling bytes that were zero
        # already changes nothing); the first changed one ends the log.
        kept_end = tail_recs[0][1]
        for start, end, _t, _p in tail_recs:
            if now[start:end] != orig[start:end]:
                break
            kept_end = end
        expected = all_records(segs, len(segs) - 1, kept_end)
        # "repaired" means non-zero bytes of a partial record were thrown away.
        log = check_opens_to(dst, expected, repaired=now[kept_end:].strip(b"\0") != b"")
        if case % 10 == 0:
            # The repaired log accepts appends and replays them after the kept prefix.
            w, rs = WAL.open(dst, segment_size=SEG)
            nxt = (log[-1].Index if log else 0) + 1
            w.save(raftpb.HardState(term=99, commit=nxt), [raftpb.Entry(Term=99, Index=nxt, Data=b"new")])
            w.close()
            w, rs = WAL.open(dst, segment_size=SEG)
            assert [e.Index for e in rs.entries] == [e.Index for e in log] + [nxt]
            assert rs.entries[-1].Data == b"new" and not rs.repaired
            w.close()
        shutil.rmtree(dst)


def _flip(path, offset, rng):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([b ^ rng.randint(1, 255)]))


def test_flip_in_middle_is_refused(pristine, scratch):
    d, segs = pristine
    rng = random.Random(SEED + 2)
    positions = [(si, rec) for si, (_n, recs) in enumerate(segs) for rec in recs]
    positions = positions[:-1]  # everything but the very last record
    for case in range(120):
        si, (start, end, rtype, _p) = rng.choice(positions)
        dst = copy_to(d, scratch, "m%d" % case)
        _flip(os.path.join(dst, segs[si][0]), rng.randrange(start, end), rng)
        with pytest.raises(WALCorruptError) as err:
            w, _rs = WAL.open(dst, segment_size=SEG)
            w.close()
        assert segs[si][0] in str(err.value)
        assert "offset" in str(err.value) or "chain" in str(err.value)
        shutil.rmtree(dst)


def test_flip_in_last_record_is_a_torn_tail(pristine, scratch):
    d, segs = pristine
    rng = random.Random(SEED + 3)
    tail_name, tail_recs = segs[-1]
    start, end, _t, _p = tail_recs[-1]
    for case in range(40):
        dst = copy_to(d, scratch, "l%d" % case)
        _flip(os.path.join(dst, tail_name), rng.randrange(start, end), rng)
        expected = all_records(segs, len(segs) - 1, start)
        check_opens_to(dst, expected, repaired=True)
        shutil.rmtree(dst)


def test_garbage_after_last_record_is_cut(pristine, scratch):
    d, segs = pristine
    rng = random.Random(SEED + 4)
    tail_name, tail_recs = segs[-1]
    for case in range(12):
        dst = copy_to(d, scratch, "g%d" % case)
        path = os.path.join(dst, tail_name)
        with open(path, "r+b") as f:
            f.seek(tail_recs[-1][1] + rng.randint(0, 100))
            f.write(rng.randbytes(rng.randint(1, 200)))
        check_opens_to(dst, all_records(segs), repaired=True)
        shutil.rmtree(dst)


def test_torn_multi_sector_write_with_zero_sector(tmp_path):
    """A batch whose middle sector never reached the disk while a later one did: torn, not corrupt."""
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m")
    w.save(None, [raftpb.Entry(Term=1, Index=1, Data=b"a" * 100)])
    # One batch spanning several sectors.
    batch = [raftpb.Entry(Term=1, Index=i, Data=os.urandom(700)) for i in range(2, 8)]
    w.save(None, batch)
    name = w.segments[-1]
    w.close()
    (_n, recs), = walk(d)
    batch_start = recs[-len(batch)][0]
    path = os.path.join(d, name)
    with open(path, "r+b") as f:
        sector = -(-(batch_start + 1) // 512) * 512  # first whole sector inside the batch
        f.seek(sector)
        f.write(bytes(512))
    w, rs = WAL.open(d)
    idxs = [e.Index for e in rs.entries]
    assert rs.repaired and idxs[0] == 1 and idxs == list(range(1, len(idxs) + 1)) and len(idxs) < 7
    w.close()


@pytest.mark.parametrize("trailing_zero_record", ["snapshot", "state"])
def test_flip_before_a_last_record_that_ends_in_zero_bytes(tmp_path, trailing_zero_record):
    """The last record's own trailing zero bytes (a snapshot marker's high term bytes) must not
    hide it from the search for valid records after the damage."""
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m", preallocate_segments=False)
    w.save(None, [raftpb.Entry(Term=1, Index=i, Data=b"d%d" % i) for i in range(1, 4)])
    if trailing_zero_record == "snapshot":
        w.save_snapshot(2, 1)              # payload <QQ: ends in seven zero bytes
    else:
        w.save(raftpb.HardState(term=1, vote=256), [])  # varint 0x80 0x02: ... vote=256, commit 0
    name = w.segments[-1]
    w.close()
    (_n, recs), = walk(d)
    assert recs[-1][3].endswith(b"\0") or trailing_zero_record == "state"
    start, end = recs[-2][0], recs[-2][1]
    for pos in range(start, end):
        dst = str(tmp_path / ("c%d" % pos))
        shutil.copytree(d, dst)
        _flip(os.path.join(dst, name), pos, random.Random(pos))
        with pytest.raises(WALCorruptError):
            WAL.open(dst)


def test_zero_sector_far_from_the_end_is_corruption(tmp_path, monkeypatch):
    """A crash tears at most the unsynced window at the end; a zeroed sector further back sits
    among durable records and must be refused, not 'repaired' away."""
    from pyetcd.wal import record as rec

    monkeypatch.setattr(rec, "TEAR_WINDOW", 4096)
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m", preallocate_segments=False)
    syncs = []
    w.fsync_observer = syncs.append
    for i in range(1, 31):
        w.save(None, [raftpb.Entry(Term=1, Index=i, Data=os.urandom(700))], sync=False)
    # The writer kept no more than the window unsynced, even with sync=False.
    assert len(syncs) >= (30 * 700) // 4096 - 1
    before = len(syncs)
    w.save(None, [raftpb.Entry(Term=1, Index=30 + k, Data=os.urandom(700)) for k in range(1, 21)])
    assert len(syncs) - before >= 3  # one 14 KiB batch, written in window-sized pieces
    name = w.segments[-1]
    w.close()
    (_n, recs), = walk(d)
    path = os.path.join(d, name)
    size = recs[-1][1]
    with open(path, "rb") as f:
        pristine_bytes = f.read()

    def zero_sector_at(sector_start):
        with open(path, "wb") as f:
            f.write(pristine_bytes[:sector_start] + bytes(512) + pristine_bytes[sector_start + 512:])

    far = 1024  # well before the last 4 KiB
    zero_sector_at(far)
    with pytest.raises(WALCorruptError, match="valid record follows"):
        WAL.open(d)
    near = (size - 2048) // 512 * 512
    zero_sector_at(near)
    w, rs = WAL.open(d)
    assert rs.repaired and [e.Index for e in rs.entries] == list(range(1, len(rs.entries) + 1))
    assert 30 < len(rs.entries) < 50
    w.close()
