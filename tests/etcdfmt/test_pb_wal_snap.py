"""etcd's on-disk formats without a server: gogoproto encodings, WAL frames, the CRC chain, segment
cuts, torn tails, the reader's snapshot and overwrite rules, .snap files, the v2 store JSON.

The byte strings below were read out of files written by etcd 3.5.1 (etcdutl snapshot restore);
tests/cli/test_restore.py compares whole files against etcd's."""
from __future__ import annotations

import json
import os

import pytest
from crc32c import crc32c

from pyetcd.etcdfmt import pb, snap, wal
from pyetcd.etcdfmt.v2store import V2Store, membership_from_json
from pyetcd.pb import raftpb

MEMBER = 0xDDD67B312462FD7B  # member "s1" at http://127.0.0.1:12380, token etcd-cluster


def test_gogo_encodings_match_etcd_bytes():
    # records of a WAL written by etcdutl 3.5.1 (see the module docstring)
    assert pb.Record(type=wal.CRC_TYPE, crc=0).marshal() == bytes.fromhex("08041000")
    assert pb.WalSnapshot().marshal() == bytes.fromhex("08001000")
    assert pb.HardState(1, MEMBER, 1).marshal() == bytes.fromhex("080110fbfa8ba392e69eebdd011801")
    conf = pb.ConfState(voters=[MEMBER])
    assert pb.WalSnapshot(1, 1, conf).marshal() == bytes.fromhex("080110011a0d08fbfa8ba392e69eebdd012800")
    cc = pb.ConfChange(type=pb.CONF_CHANGE_ADD_NODE, node_id=MEMBER, context=b"{}")
    assert cc.marshal() == bytes.fromhex("0800100018fbfa8ba392e69eebdd0122027b7d")
    e = pb.Entry(term=1, index=1, type=pb.ENTRY_CONF_CHANGE, data=b"x")
    assert e.marshal() == bytes.fromhex("0801100118012201") + b"x"
    # zero-valued non-nullable fields are written; absent nullable ones are not
    assert pb.Entry().marshal() == bytes.fromhex("080010001800")
    assert pb.Entry(data=b"").marshal() == bytes.fromhex("08001000180022" "00")
    assert pb.Metadata(1, 2).marshal() == bytes.fromhex("08011002")


def test_decoders_read_what_a_proto3_encoder_writes():
    # protobuf's own encoder omits zeros and packs repeated fields; gogo's decoders accept that
    p = raftpb.Entry(Term=7, Index=9, Type=1, Data=b"abc")
    assert pb.Entry.unmarshal(p.SerializeToString()) == pb.Entry(7, 9, 1, b"abc")
    cs = raftpb.ConfState(voters=[1, 300], learners=[5])
    got = pb.ConfState.unmarshal(cs.SerializeToString())
    assert got.voters == [1, 300] and got.learners == [5]
    # and protobuf parses ours
    q = raftpb.Entry()
    q.ParseFromString(pb.Entry(3, 4, 0, b"d").marshal())
    assert (q.Term, q.Index, q.Type, q.Data) == (3, 4, 0, b"d")
    with pytest.raises(pb.DecodeError):
        pb.Entry.unmarshal(b"\x22\x05ab")


def test_frame_sizes_and_padding():
    assert wal.encode_frame_size(4) == ((0x84 << 56) | 4, 4)
    assert wal.encode_frame_size(32) == (32, 0)
    assert wal.encode_frame_size(25) == ((0x87 << 56) | 25, 7)
    for n in range(0, 40):
        word, pad = wal.encode_frame_size(n)
        assert wal.decode_frame_size(word) == (n, pad)
        assert (8 + n + pad) % 8 == 0


def _entries(lo, hi, term=1, size=10):
    return [pb.Entry(term=term, index=i, data=bytes([i % 256]) * size) for i in range(lo, hi + 1)]


def test_wal_write_read_with_cuts(tmp_path):
    d = str(tmp_path / "wal")
    md = pb.Metadata(5, 6).marshal()
    w = wal.WAL.create(d, md, segment_size=1024)
    try:
        for i in range(1, 61, 3):
            w.save(pb.HardState(term=1, vote=5, commit=i + 2), _entries(i, i + 2, size=40))
        w.save_snapshot(pb.WalSnapshot(30, 1, pb.ConfState(voters=[5])))
        w.save(pb.HardState(term=1, vote=5, commit=61), _entries(61, 61))
    finally:
        w.close()
    names = wal.wal_names(d)
    assert len(names) > 3 and names[0] == "0000000000000000-0000000000000000.wal"
    seqs = [wal.parse_wal_name(n) for n in names]
    assert [s for s, _ in seqs] == list(range(len(names)))
    assert all(i > 0 for _, i in seqs[1:])
    # the first segment starts crc, metadata, empty snapshot; later ones crc (the chain so far),
    # metadata, state; a cut segment is truncated to its records, the tail stays preallocated
    all_recs = list(wal.decode_records([os.path.join(d, n) for n in names]))
    for n in names:
        types = [r.record.type for r in all_recs if r.segment == n][:3]
        third = wal.SNAPSHOT_TYPE if n == names[0] else wal.STATE_TYPE
        assert types == [wal.CRC_TYPE, wal.METADATA_TYPE, third]
        used = sum(r.frame_size for r in all_recs if r.segment == n)
        size = os.path.getsize(os.path.join(d, n))
        assert size == (1024 if n == names[-1] else used)
    starts = [r for r in all_recs if r.offset == 0]
    assert starts[0].record.crc == 0 and all(r.record.crc != 0 for r in starts[1:])

    got = wal.read_all(d)
    assert pb.Metadata.unmarshal(got.metadata) == pb.Metadata(5, 6)
    assert [e.index for e in got.entries] == list(range(1, 62))
    assert got.state == pb.HardState(1, 5, 61)
    assert [(s.index, s.term) for s in got.snapshots] == [(0, 0), (30, 1)]
    after = wal.read_all(d, pb.WalSnapshot(30, 1))
    assert [e.index for e in after.entries] == list(range(31, 62))
    assert [(s.index, s.term) for s in wal.valid_snapshot_entries(d)] == [(0, 0), (30, 1)]
    with pytest.raises(wal.ErrSnapshotNotFound):
        wal.read_all(d, pb.WalSnapshot(31, 1))
    with pytest.raises(wal.ErrSnapshotMismatch):
        wal.read_all(d, pb.WalSnapshot(30, 2))
    # a gap in the sequence: wal: file not found
    os.rename(os.path.join(d, names[1]), os.path.join(d, names[1] + ".moved"))
    with pytest.raises(wal.ErrFileNotFound):
        wal.read_all(d)


def test_wal_conflicting_entries_and_torn_tail(tmp_path):
    d = str(tmp_path / "wal")
    w = wal.WAL.create(d, b"m", segment_size=1 << 20)
    try:
        w.save(pb.HardState(1, 1, 3), _entries(1, 5))
        w.save(pb.HardState(2, 1, 4), _entries(4, 4, term=2))  # a new leader overwrites 4..5
    finally:
        w.close()
    got = wal.read_all(d)
    assert [(e.index, e.term) for e in got.entries] == [(1, 1), (2, 1), (3, 1), (4, 2)]
    assert not got.torn_tail
    # cut the last record short, as a crash mid-write would; a zeroed sector makes it torn
    path = os.path.join(d, wal.wal_names(d)[0])
    recs = list(wal.decode_records([path]))
    last = recs[-1]
    with open(path, "r+b") as f:
        f.seek(last.offset + 8)
        f.write(b"\0" * (last.frame_size - 8))
    got = wal.read_all(d)
    assert got.torn_tail and got.state == pb.HardState(1, 1, 3)
    assert [(e.index, e.term) for e in got.entries] == [(1, 1), (2, 1), (3, 1), (4, 2)]


def test_wal_crc_mismatch(tmp_path):
    d = str(tmp_path / "wal")
    w = wal.WAL.create(d, b"m", segment_size=1 << 20)
    try:
        w.save(pb.HardState(1, 1, 5), _entries(1, 5, size=30))
    finally:
        w.close()
    path = os.path.join(d, wal.wal_names(d)[0])
    recs = list(wal.decode_records([path]))
    target = next(r for r in recs if r.record.type == wal.ENTRY_TYPE)
    with open(path, "r+b") as f:
        f.seek(target.offset + target.frame_size - 12)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(wal.ErrCRCMismatch):
        wal.read_all(d)


def test_wal_create_refuses_existing_and_is_atomic(tmp_path):
    d = str(tmp_path / "wal")
    wal.WAL.create(d, b"m", segment_size=4096).close()
    assert not os.path.exists(d + ".tmp")
    assert os.path.getsize(os.path.join(d, wal.wal_name(0, 0))) == 4096  # preallocated
    with pytest.raises(FileExistsError):
        wal.WAL.create(d, b"m")


def test_snap_files(tmp_path):
    d = str(tmp_path)
    s1 = pb.Snapshot(b"one", pb.SnapshotMetadata(pb.ConfState(voters=[1]), index=5, term=1))
    s2 = pb.Snapshot(b"two", pb.SnapshotMetadata(pb.ConfState(voters=[1]), index=9, term=2))
    p1, p2 = snap.save_snap(d, s1), snap.save_snap(d, s2)
    assert os.path.basename(p2) == "0000000000000002-0000000000000009.snap"
    assert snap.save_snap(d, pb.Snapshot()) == ""  # an empty snapshot is not written
    body = open(p1, "rb").read()
    f = pb.SnapFile.unmarshal(body)
    assert f.crc == crc32c(f.data) and pb.Snapshot.unmarshal(f.data) == s1
    assert snap.load_newest(d) == s2
    assert snap.load_newest_available(d, [pb.WalSnapshot(5, 1)]) == s1
    with pytest.raises(snap.ErrNoSnapshot):
        snap.load_newest_available(d, [pb.WalSnapshot(7, 1)])
    # a corrupt newest file is renamed .broken and the next one is used
    with open(p2, "r+b") as fh:
        fh.seek(len(body) - 1)
        fh.write(b"\xff")
    assert snap.load_newest(d) == s1
    assert os.path.exists(p2 + ".broken") and not os.path.exists(p2)
    with pytest.raises(snap.ErrEmptySnapshot):
        snap.decode(b"")
    with pytest.raises(snap.ErrCRCMismatch):
        snap.decode(pb.SnapFile(crc=1, data=b"x").marshal())


def test_v2store_json_and_membership():
    st = V2Store()
    st.create("/0/members/1a/raftAttributes", '{"peerURLs":["http://a:1"]}')
    st.create("/0/members/2b/raftAttributes", '{"peerURLs":["http://b:1"]}')
    doc = json.loads(st.save())
    members = doc["Root"]["Children"]["0"]["Children"]["members"]
    assert (members["CreatedIndex"], members["ModifiedIndex"]) == (1, 1)
    assert members["Children"]["2b"]["CreatedIndex"] == 2
    assert members["Children"]["2b"]["Children"]["raftAttributes"]["Children"] is None
    assert doc["Root"]["Children"]["1"]["Children"] == {}
    q = doc["WatcherHub"]["EventHistory"]
    assert len(q["Queue"]["Events"]) == 1000 and q["Queue"]["Events"][2] is None
    assert (q["Queue"]["Size"], q["Queue"]["Back"], q["StartIndex"], q["LastIndex"]) == (2, 2, 1, 2)
    assert doc["CurrentIndex"] == 2 and doc["Stats"]["createSuccess"] == 2
    assert doc["CurrentVersion"] == 2
    assert membership_from_json(st.save())["members"] == {0x1A: {"peerURLs": ["http://a:1"]},
                                                          0x2B: {"peerURLs": ["http://b:1"]}}
