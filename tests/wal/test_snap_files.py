"""Snapshot files: atomic save, newest-valid load, broken files set aside."""
import os

import pytest

from pyetcd.pb import raftpb
from pyetcd.wal import WALError
from pyetcd.wal.snap import Snapshotter, snap_name


def snapshot(index, term, data=None, voters=(1, 2, 3)):
    s = raftpb.Snapshot(data=data if data is not None else b"state@%d" % index)
    s.metadata.index = index
    s.metadata.term = term
    s.metadata.conf_state.voters.extend(voters)
    return s


def test_save_and_load(tmp_path):
    ss = Snapshotter(str(tmp_path / "snap"))
    assert ss.load() is None
    name = ss.save(snapshot(10, 2))
    assert name == "%016x-%016x.snap" % (2, 10)
    assert sorted(os.listdir(ss.dirpath)) == [name]  # no temp file left behind
    got = ss.load()
    assert got == snapshot(10, 2)
    assert list(got.metadata.conf_state.voters) == [1, 2, 3]


def test_load_picks_newest_by_term_then_index(tmp_path):
    ss = Snapshotter(str(tmp_path))
    ss.save(snapshot(100, 1))
    ss.save(snapshot(50, 3))
    ss.save(snapshot(60, 3))
    got = ss.load()
    assert (got.metadata.index, got.metadata.term) == (60, 3)


def test_empty_snapshot_refused(tmp_path):
    ss = Snapshotter(str(tmp_path))
    with pytest.raises(WALError):
        ss.save(raftpb.Snapshot())


def _corrupt(path, how):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if how == "flip":
        data[len(data) // 2 + 3] ^= 0x40
    elif how == "truncate":
        del data[len(data) - 5:]
    elif how == "empty":
        data = bytearray()
    elif how == "magic":
        data[0] ^= 1
    with open(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("how", ["flip", "truncate", "empty", "magic"])
def test_corrupt_newest_is_skipped_and_renamed(tmp_path, how):
    ss = Snapshotter(str(tmp_path))
    ss.save(snapshot(10, 1, data=os.urandom(300)))
    good = snapshot(20, 1, data=os.urandom(300))
    ss.save(good)
    bad = ss.save(snapshot(30, 1, data=os.urandom(300)))
    _corrupt(os.path.join(ss.dirpath, bad), how)
    assert ss.load() == good
    assert os.path.exists(os.path.join(ss.dirpath, bad + ".broken"))
    assert bad not in ss.names()


def test_renamed_file_is_broken(tmp_path):
    # A file whose name does not match its contents is not trusted.
    ss = Snapshotter(str(tmp_path))
    name = ss.save(snapshot(10, 1))
    os.rename(os.path.join(ss.dirpath, name), os.path.join(ss.dirpath, snap_name(1, 99)))
    assert ss.load() is None


def test_load_newest_available(tmp_path):
    ss = Snapshotter(str(tmp_path))
    for idx in (10, 20, 30):
        ss.save(snapshot(idx, 2))
    # The WAL only knows markers for 10 and 20 (30 was written but its marker was lost).
    got = ss.load_newest_available([(0, 0), (10, 2), (20, 2)])
    assert got.metadata.index == 20
    got = ss.load_newest_available([(10, 2)])
    assert got.metadata.index == 10
    assert ss.load_newest_available([(40, 2), (20, 9)]) is None
    # A corrupt candidate falls back to the next older candidate.
    _corrupt(os.path.join(ss.dirpath, snap_name(2, 20)), "flip")
    assert ss.load_newest_available([(10, 2), (20, 2)]).metadata.index == 10


def test_remove_older_than(tmp_path):
    ss = Snapshotter(str(tmp_path))
    for idx in (10, 20, 30, 40):
        ss.save(snapshot(idx, 1))
    removed = ss.remove_older_than(35, keep=2)
    assert removed == [snap_name(1, 20), snap_name(1, 10)]
    assert ss.names() == [snap_name(1, 40), snap_name(1, 30)]


def test_leftover_temp_file_is_removed_and_ignored(tmp_path):
    d = str(tmp_path)
    with open(os.path.join(d, snap_name(1, 50) + ".tmp"), "wb") as f:
        f.write(b"half")
    with open(os.path.join(d, "0000000000000005.snap.db"), "wb") as f:
        f.write(b"not ours")  # the transport's db snapshots live here too
    ss = Snapshotter(d)
    assert ss.load() is None
    assert sorted(os.listdir(d)) == ["0000000000000005.snap.db"]
