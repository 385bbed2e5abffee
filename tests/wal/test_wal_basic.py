"""WAL behaviour: round trip, conflict truncation, segments, restart, snapshots markers, errors."""
import os

import pytest

from pyetcd.pb import raftpb
from pyetcd.wal import WAL, WALCorruptError, WALError
from pyetcd.wal import record as rec


def ent(index, term=1, data=None):
    return raftpb.Entry(Term=term, Index=index, Data=data if data is not None else b"e%d" % index)


def hs(term, commit, vote=0):
    return raftpb.HardState(term=term, vote=vote, commit=commit)


def idx(entries):
    return [e.Index for e in entries]


def test_exists_and_create(tmp_path):
    d = str(tmp_path / "wal")
    assert not WAL.exists(d)
    w = WAL.create(d, b"meta")
    assert WAL.exists(d)
    assert w.last_index == 0
    w.close()
    with pytest.raises(WALError):
        WAL.create(d, b"meta")


def test_create_in_existing_empty_dir(tmp_path):
    d = str(tmp_path)
    WAL.create(d, b"m").close()
    assert WAL.exists(d)


def test_open_missing(tmp_path):
    with pytest.raises(WALError):
        WAL.open(str(tmp_path / "nope"))


def test_round_trip(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"cluster-1")
    w.save(hs(1, 0, vote=3), [ent(1), ent(2)])
    w.save(hs(1, 2, vote=3), [ent(3, data=b"x" * 1000)])
    w.save(None, [ent(4, term=2)], sync=False)
    w.save(hs(2, 4), [])
    assert w.last_index == 4
    w.close()

    w, rs = WAL.open(d)
    assert rs.metadata == b"cluster-1"
    assert idx(rs.entries) == [1, 2, 3, 4]
    assert rs.entries[2].Data == b"x" * 1000
    assert rs.entries[3].Term == 2
    assert (rs.hard_state.term, rs.hard_state.vote, rs.hard_state.commit) == (2, 0, 4)
    assert rs.snapshots == [(0, 0)]
    assert not rs.repaired
    assert w.last_index == 4
    w.close()


def test_empty_log_opens(tmp_path):
    d = str(tmp_path / "wal")
    WAL.create(d, b"m").close()
    w, rs = WAL.open(d)
    assert rs.entries == [] and rs.hard_state == raftpb.HardState()
    w.close()


def test_conflict_truncation_on_replay(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m")
    w.save(hs(1, 1), [ent(i, term=1) for i in range(1, 6)])
    # A new leader overwrites the log from index 3 on.
    w.save(hs(2, 2), [ent(3, term=2), ent(4, term=2)])
    assert w.last_index == 4
    w.save(None, [ent(5, term=2)])
    w.close()
    w, rs = WAL.open(d)
    assert idx(rs.entries) == [1, 2, 3, 4, 5]
    assert [e.Term for e in rs.entries] == [1, 1, 2, 2, 2]
    w.close()


def test_conflict_truncation_shortens_log(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m")
    w.save(None, [ent(i) for i in range(1, 11)])
    w.save(None, [ent(4, term=3)])
    w.close()
    w, rs = WAL.open(d)
    assert idx(rs.entries) == [1, 2, 3, 4]
    assert rs.entries[-1].Term == 3
    assert w.last_index == 4
    w.close()


def test_restart_and_continue(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m")
    w.save(hs(1, 1), [ent(1), ent(2)])
    w.close()
    for round_ in range(3):
        w, rs = WAL.open(d)
        n = rs.entries[-1].Index
        w.save(hs(1, n), [ent(n + 1), ent(n + 2)])
        w.close()
    w, rs = WAL.open(d)
    assert idx(rs.entries) == list(range(1, 9))
    assert rs.hard_state.commit == 6
    w.close()


def test_segment_cut_and_replay(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m", segment_size=2048)
    for i in range(1, 101):
        w.save(hs(1, i - 1), [ent(i, data=os.urandom(60))], sync=False)
    w.sync()
    segs = w.segments
    assert len(segs) > 3
    # Each segment is named after the first index it was cut for.
    firsts = [int(n.split("-")[1].split(".")[0], 16) for n in segs]
    assert firsts == sorted(firsts) and firsts[0] == 0
    w.close()
    for name in segs[1:]:
        with open(os.path.join(d, name), "rb") as f:
            data = f.read()
        # A segment's head is metadata + the current state and verifies on its own.
        scan = rec.scan_segment(data, name, None, tail=False)
        assert scan.records[0][0] == rec.METADATA and bytes(scan.records[0][1]) == b"m"
        assert scan.records[1][0] == rec.STATE
        first_entry = next(p for t, p in scan.records if t == rec.ENTRY)
        assert raftpb.Entry.FromString(first_entry).Index == int(name.split("-")[1][:16], 16)
    w, rs = WAL.open(d)
    assert idx(rs.entries) == list(range(1, 101))
    assert rs.hard_state.commit == 99
    w.close()


def test_release_and_open_from_snapshot(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m", segment_size=2048)
    for i in range(1, 101):
        w.save(hs(1, i), [ent(i, data=os.urandom(60))], sync=False)
    w.save_snapshot(60, 1)
    for i in range(101, 121):
        w.save(hs(1, i), [ent(i, data=os.urandom(60))], sync=False)
    before = list(w.segments)
    w.release_to(60)
    after = w.segments
    assert len(after) < len(before) and after == before[len(before) - len(after):]
    # The kept first segment is the one holding index 60.
    first = int(after[0].split("-")[1].split(".")[0], 16)
    assert first <= 60
    assert len(after) == 1 or int(after[1].split("-")[1].split(".")[0], 16) > 60
    assert sorted(n for n in os.listdir(d) if n.endswith(".wal")) == after
    w.close()

    w, rs = WAL.open(d, snapshot_index=60, snapshot_term=1)
    assert idx(rs.entries) == list(range(61, 121))
    assert (60, 1) in rs.snapshots
    assert w.last_index == 120
    w.close()
    # The released history is gone: replaying from 0 finds a gap.
    with pytest.raises(WALCorruptError):
        WAL.open(d)


def test_release_never_removes_tail(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m", segment_size=1024)
    for i in range(1, 40):
        w.save(None, [ent(i, data=b"z" * 50)])
    w.release_to(10 ** 9)
    assert len(w.segments) == 1
    w.save(None, [ent(40)])
    w.close()
    # Everything before the tail is gone, so only a snapshot could restore the rest.
    with pytest.raises(WALCorruptError, match="gap"):
        WAL.open(d, snapshot_index=0)


def test_snapshot_marker_required_and_term_checked(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m")
    w.save(None, [ent(i) for i in range(1, 11)])
    w.save_snapshot(5, 1)
    w.close()
    w, rs = WAL.open(d, snapshot_index=5, snapshot_term=1)
    assert idx(rs.entries) == [6, 7, 8, 9, 10]
    assert rs.snapshots == [(0, 0), (5, 1)]
    w.close()
    with pytest.raises(WALCorruptError, match="snapshot marker"):
        WAL.open(d, snapshot_index=7, snapshot_term=1)
    with pytest.raises(WALCorruptError, match="term"):
        WAL.open(d, snapshot_index=5, snapshot_term=2)


def test_snapshot_ahead_of_log(tmp_path):
    # A follower installs a snapshot from the leader: entries continue after the snapshot.
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m", segment_size=1024)
    w.save(None, [ent(1), ent(2)])
    w.save_snapshot(500, 3)
    assert w.last_index == 500
    for i in range(501, 540):
        w.save(hs(3, i), [ent(i, term=3, data=b"q" * 40)])
    # Cuts after the marker are named past it, so opening from the snapshot finds the marker.
    firsts = [int(n.split("-")[1].split(".")[0], 16) for n in w.segments]
    assert len(firsts) > 1 and firsts[0] == 0 and all(f > 500 for f in firsts[1:])
    w.close()
    w, rs = WAL.open(d, snapshot_index=500, snapshot_term=3)
    assert idx(rs.entries) == list(range(501, 540))
    w.close()


def test_gap_is_corruption(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m")
    w.save(None, [ent(1), ent(2), ent(4)])
    w.close()
    with pytest.raises(WALCorruptError, match="gap"):
        WAL.open(d)


def test_locked_against_second_writer(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m")
    with pytest.raises(WALError, match="locked"):
        WAL.open(d)
    w.close()
    w2, _ = WAL.open(d)
    w2.close()


def test_closed_wal_refuses_writes(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m")
    w.close()
    with pytest.raises(WALError):
        w.save(None, [ent(1)])
    w.close()  # idempotent


def test_missing_middle_segment(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m", segment_size=1024)
    for i in range(1, 60):
        w.save(None, [ent(i, data=b"y" * 40)])
    segs = w.segments
    w.close()
    assert len(segs) >= 3
    os.unlink(os.path.join(d, segs[1]))
    with pytest.raises(WALCorruptError, match="sequence"):
        WAL.open(d)


def test_spliced_segment_breaks_chain(tmp_path):
    # Segments from two different logs with identical names must not be mixed silently.
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    for d, tag in ((a, b"A"), (b, b"B")):
        w = WAL.create(d, b"m", segment_size=1024)
        for i in range(1, 60):
            w.save(None, [ent(i, data=tag * 40)])
        segs = w.segments
        w.close()
    victim = segs[1]
    with open(os.path.join(b, victim), "rb") as f:
        data = f.read()
    with open(os.path.join(a, victim), "wb") as f:
        f.write(data)
    with pytest.raises(WALCorruptError, match="chain"):
        WAL.open(a)


def test_stray_temp_segment_ignored(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m")
    w.save(None, [ent(1)])
    w.close()
    with open(os.path.join(d, "0000000000000001-0000000000000002.wal.tmp"), "wb") as f:
        f.write(b"half a cut")
    w, rs = WAL.open(d)
    assert idx(rs.entries) == [1]
    assert not os.path.exists(os.path.join(d, "0000000000000001-0000000000000002.wal.tmp"))
    w.close()


def test_without_preallocation(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m", preallocate_segments=False)
    w.save(hs(1, 1), [ent(1), ent(2)])
    w.close()
    w, rs = WAL.open(d, preallocate_segments=False)
    assert idx(rs.entries) == [1, 2]
    path = os.path.join(d, w.segments[0])
    w.close()
    assert os.path.getsize(path) < 200


def test_io_failure_poisons_the_wal(tmp_path, monkeypatch):
    import errno

    from pyetcd.wal import wal as walmod

    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m")
    w.save(hs(1, 1), [ent(1)])

    def broken_sync(fd):
        raise OSError(errno.EIO, "simulated fdatasync failure")

    monkeypatch.setattr(walmod, "fdatasync", broken_sync)
    with pytest.raises(WALError, match="I/O failure"):
        w.save(hs(1, 2), [ent(2)])
    monkeypatch.undo()
    # Even with a healthy disk again, the WAL refuses to carry on: nothing more is acknowledged.
    with pytest.raises(WALError, match="unusable"):
        w.save(None, [ent(3)])
    with pytest.raises(WALError, match="unusable"):
        w.sync()
    w.close()
    w, rs = WAL.open(d)
    assert idx(rs.entries)[:1] == [1]
    w.close()


def test_tail_that_lost_its_head_is_rebuilt(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"meta", segment_size=1024)
    for i in range(1, 30):
        w.save(hs(2, i), [ent(i, data=b"p" * 40)])
    w.cut()
    tail = w.segments[-1]
    w.close()
    # The crash tore the fresh segment down to a few bytes of its head.
    os.truncate(os.path.join(d, tail), 7)
    w, rs = WAL.open(d)
    assert rs.repaired and idx(rs.entries) == list(range(1, 30))
    assert rs.hard_state.commit == 29
    w.save(hs(2, 30), [ent(30)])
    w.close()
    w, rs = WAL.open(d)
    assert idx(rs.entries) == list(range(1, 31)) and not rs.repaired
    assert rs.metadata == b"meta" and rs.hard_state.commit == 30
    w.close()


def test_hard_state_alone_and_empty_saves(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m")
    w.save(raftpb.HardState(), [])   # nothing to record
    w.save(None, [])
    w.save(hs(5, 0, vote=2), [])     # a vote on its own must be durable
    w.close()
    w, rs = WAL.open(d)
    assert rs.entries == [] and (rs.hard_state.term, rs.hard_state.vote) == (5, 2)
    w.close()


def test_crc_of_every_record_covers_its_header(tmp_path):
    # Changing a record's type byte (say entry -> state) must not go unnoticed.
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m", preallocate_segments=False)
    w.save(None, [ent(1), ent(2)])
    w.save(hs(1, 2), [ent(3)])
    name = w.segments[0]
    w.close()
    path = os.path.join(d, name)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    scan = rec.scan_segment(bytes(data), name, None, tail=True)
    # Offset of the second entry record: walk lengths.
    off = 0
    offsets = []
    while off < len(data):
        offsets.append(off)
        off += rec.HEADER_SIZE + int.from_bytes(data[off + 4: off + 8], "little")
    assert len(offsets) == len(scan.records) == 6
    data[offsets[3] + 8] = rec.STATE
    with open(path, "wb") as f:
        f.write(data)
    with pytest.raises(WALCorruptError, match="offset %d" % offsets[3]):
        WAL.open(d)


def test_snapshot_markers_pick_a_snapshot_the_wal_can_open_from(tmp_path):
    from pyetcd.wal.snap import Snapshotter

    d = str(tmp_path / "wal")
    ss = Snapshotter(str(tmp_path / "snap"))
    w = WAL.create(d, b"m", segment_size=1024)
    for i in range(1, 41):
        w.save(hs(1, i), [ent(i, data=b"s" * 30)])
        if i in (10, 20):
            snap = raftpb.Snapshot(data=b"at %d" % i)
            snap.metadata.index, snap.metadata.term = i, 1
            ss.save(snap)
            w.save_snapshot(i, 1)
    # A crash between writing the snapshot file and its WAL marker.
    snap = raftpb.Snapshot(data=b"at 30")
    snap.metadata.index, snap.metadata.term = 30, 1
    ss.save(snap)
    w.close()
    # And a marker above the commit index (hard state not yet saved) does not count.
    w, _ = WAL.open(d)
    w.save_snapshot(45, 1)
    w.close()

    markers = WAL.snapshot_markers(d)
    assert markers == [(0, 0), (10, 1), (20, 1)]
    assert ss.load().metadata.index == 30  # newest file, but the WAL cannot open from it
    chosen = ss.load_newest_available(markers)
    assert chosen.metadata.index == 20
    w, rs = WAL.open(d, snapshot_index=20, snapshot_term=1)
    assert idx(rs.entries) == list(range(21, 41))
    w.close()
    with pytest.raises(WALCorruptError, match="marker"):
        WAL.open(d, snapshot_index=30, snapshot_term=1)


def test_fsync_observer_and_bytes_written(tmp_path):
    d = str(tmp_path / "wal")
    w = WAL.create(d, b"m")
    seen = []
    w.fsync_observer = seen.append
    w.save(hs(1, 1), [ent(1)], sync=True)
    w.save(None, [ent(2)], sync=False)
    assert len(seen) == 1 and seen[0] >= 0
    # Two entry records and one state record, each a 13-byte header plus its payload.
    payloads = [ent(1).SerializeToString(), hs(1, 1).SerializeToString(), ent(2).SerializeToString()]
    assert w.bytes_written == sum(13 + len(p) for p in payloads)
    w.close()
    assert len(seen) == 2  # close() syncs what was left unsynced
