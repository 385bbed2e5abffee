"""pyetcd's buckets <-> etcd 3.5's: the three translated buckets byte for byte as etcd writes
them (bytes taken from a real etcd 3.5.1 file), and a round trip through a bbolt file."""
import struct

from pyetcd.storage import etcd_buckets as eb
from pyetcd.storage.backend import Backend
from pyetcd.server.membership import MemberInfo


def test_leasepb_as_etcd_writes_it():
    # etcd 3.5.1's lease bucket value for lease 0x2040a20504d50507 with TTL 100 (remaining 0)
    assert eb.encode_leasepb(0x2040A20504D50507, 100, 0) == b"\x08\x87\x8a\xd4\xa6\xd0\xc0\xa8\xa0 \x10d"
    for rec in [(1, 5, 0), (2**63 - 1, 9_000_000_000, 42), (-7, 1, -1), (0, 0, 0)]:
        assert eb.decode_leasepb(eb.encode_leasepb(*rec)) == rec


def test_member_json_as_etcd_writes_it():
    m = MemberInfo(3319814642761637952, "default", ["http://127.0.0.1:23800"], ["http://c"], False)
    import json
    assert eb.member_to_etcd(json.loads(m.encode())) == (
        b'{"id":3319814642761637952,"peerURLs":["http://127.0.0.1:23800"],"name":"default",'
        b'"clientURLs":["http://c"]}')
    learner = {"id": 5, "peerURLs": ["http://p"], "isLearner": True, "name": "", "clientURLs": []}
    assert eb.member_to_etcd(learner) == b'{"id":5,"peerURLs":["http://p"],"isLearner":true}'
    assert eb.conf_state_json([{"id": 9}, {"id": 3}, learner]) == b'{"voters":[3,9],"learners":[5],"auto_leave":false}'


def test_export_import_round_trip(tmp_path):
    be = Backend(str(tmp_path / "a.db"))
    small, big = MemberInfo(0xABC, "m1", ["http://p1"]), MemberInfo(0x8E9E05C52164694D, "m2", ["http://p2"])
    for m in (small, big):
        be.put("members", m.id.to_bytes(8, "big"), m.encode())
    be.put("members_removed", (77).to_bytes(8, "big"), b"")
    be.put("lease", struct.pack(">q", 12), struct.pack(">qqq", 12, 30, 7))
    be.put("key", b"\x00" * 8 + b"_" + b"\x00" * 8, b"kv-bytes")
    be.set_consistent_index(40, 3)
    be.force_commit()
    exported = {name: list(items) for name, items in eb.export_buckets(be)}
    assert list(exported) == sorted(exported) and set(eb.ETCD_BUCKETS) <= set(exported)
    assert [k for k, _ in exported[b"members"]] == [b"8e9e05c52164694d", b"abc"]  # unpadded, as etcd
    assert exported[b"members_removed"] == [(b"4d", b"removed")]
    assert exported[b"lease"] == [(struct.pack(">q", 12), eb.encode_leasepb(12, 30, 7))]
    assert dict(exported[b"cluster"]) == {b"clusterVersion": b"3.5.0"}
    meta = dict(exported[b"meta"])
    assert meta[b"confState"] == b'{"voters":[2748,10276657743932975437],"auto_leave":false}'
    assert meta[b"consistent_index"] == struct.pack(">Q", 40)
    eb.backend_to_bolt(be, str(tmp_path / "x.bolt"))
    eb.bolt_to_backend(str(tmp_path / "x.bolt"), str(tmp_path / "b.db"))
    back = Backend(str(tmp_path / "b.db"))
    for name in ("members", "members_removed", "lease", "key"):
        assert list(back.range(name)) == list(be.range(name)), name
    assert back.consistent_index == 40 and back.term == 3
    be.close()
    back.close()
