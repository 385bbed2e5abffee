"""Every validation error of the KV API, sent to real etcd and to pyetcd: the same gRPC code and
message, and nothing changed (the revision does not move)."""
import grpc
import pytest

from pyetcd.pb import rpc, rpc_grpc

RR, CMP = rpc.RangeRequest, rpc.Compare
BIG = b"x" * (1572864 + 10)          # over --max-request-bytes, under the gRPC limit
HUGE = b"x" * (1572864 + 600 * 1024)  # over the gRPC receive limit too


def put_op(k, v=b"v", **kw):
    return rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=v, **kw))


def del_op(k, end=b""):
    return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k, range_end=end))


CASES = [
    ("Range", RR(key=b"")),
    ("Range", RR(key=b"a", sort_order=7)),
    ("Range", RR(key=b"a", revision=1000)),
    ("Put", rpc.PutRequest(key=b"", value=b"v")),
    ("Put", rpc.PutRequest(key=b"a", value=b"v", ignore_value=True)),
    ("Put", rpc.PutRequest(key=b"a", lease=5, ignore_lease=True)),
    ("Put", rpc.PutRequest(key=b"missing", ignore_value=True)),
    ("Put", rpc.PutRequest(key=b"missing", ignore_lease=True)),
    ("Put", rpc.PutRequest(key=b"a", value=b"v", lease=12345)),
    ("Put", rpc.PutRequest(key=b"a", value=BIG)),
    ("Put", rpc.PutRequest(key=b"a", value=HUGE)),
    ("DeleteRange", rpc.DeleteRangeRequest(key=b"")),
    ("Txn", rpc.TxnRequest(success=[put_op(b"k%d" % i) for i in range(129)])),
    ("Txn", rpc.TxnRequest(compare=[CMP(key=b"")])),
    ("Txn", rpc.TxnRequest(success=[put_op(b"")])),
    ("Txn", rpc.TxnRequest(success=[rpc.RequestOp()])),
    ("Txn", rpc.TxnRequest(success=[put_op(b"a"), put_op(b"a")])),
    ("Txn", rpc.TxnRequest(success=[del_op(b"a", b"c"), put_op(b"b")])),
    ("Txn", rpc.TxnRequest(success=[del_op(b"a", b"\x00"), put_op(b"b")])),  # etcd's quirk: allowed
    ("Txn", rpc.TxnRequest(success=[put_op(b"a"), rpc.RequestOp(request_txn=rpc.TxnRequest(
        success=[put_op(b"a")]))])),
    ("Txn", rpc.TxnRequest(success=[rpc.RequestOp(request_txn=rpc.TxnRequest(
        success=[put_op(b"q")], failure=[put_op(b"q")]))])),                   # then/else: allowed
    ("Txn", rpc.TxnRequest(success=[put_op(b"a", lease=77)])),
    ("Txn", rpc.TxnRequest(success=[put_op(b"missing", b"", ignore_value=True)])),
    ("Txn", rpc.TxnRequest(success=[rpc.RequestOp(request_range=RR(key=b"a", revision=999))])),
    ("Txn", rpc.TxnRequest(success=[put_op(b"a", b"x", ignore_value=True)])),
    ("Compact", rpc.CompactionRequest(revision=999)),
    ("Compact", rpc.CompactionRequest(revision=0)),
    ("HashKV", rpc.HashKVRequest(revision=999)),
]


def _outcome(stubs, method, req):
    stub = stubs[1] if method == "HashKV" else stubs[0]
    try:
        getattr(stub, method)(req, timeout=10)
        return "ok"
    except grpc.RpcError as e:
        return e.code(), e.details()


def test_unknown_sort_target_is_refused_not_fatal(pyetcd_member):
    # Real etcd 3.5.1 panics on this request; pyetcd refuses it and keeps serving.
    ch, (kv, _) = _stubs(pyetcd_member)
    with pytest.raises(grpc.RpcError) as e:
        kv.Range(RR(key=b"a", sort_target=9), timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == "etcdserver: invalid sort option"
    assert kv.Range(RR(key=b"a"), timeout=10).header.revision == 1
    ch.close()


def _rev(stubs):
    return stubs[0].Range(RR(key=b"a"), timeout=10).header.revision


def _stubs(member):
    ch = grpc.insecure_channel(member.endpoint, options=[("grpc.max_send_message_length", 1 << 26)])
    return ch, (rpc_grpc.KVStub(ch), rpc_grpc.MaintenanceStub(ch))


def test_validation_errors_match_real_etcd(both):
    outcomes = []
    for member in both:
        ch, stubs = _stubs(member)
        stubs[0].Put(rpc.PutRequest(key=b"a", value=b"1"), timeout=10)
        got = []
        for method, req in CASES:
            before = _rev(stubs)
            out = _outcome(stubs, method, req)
            ch.close()  # an oversized message may break the connection: start each case afresh
            ch, stubs = _stubs(member)
            if out != "ok":
                assert _rev(stubs) == before, f"{method} {out} changed the store"
            got.append(out)
        outcomes.append(got)
        ch.close()
    want, got = outcomes
    for (method, req), w, g in zip(CASES, want, got):
        if w != "ok" and w[0] == grpc.StatusCode.RESOURCE_EXHAUSTED:
            # gRPC's own size limit: the code is the contract; the text is the gRPC library's.
            assert g != "ok" and g[0] == w[0], (method, w, g)
            continue
        assert g == w, f"{method} {str(req)[:200]}"
    assert sum(w != "ok" for w in want) >= 20
