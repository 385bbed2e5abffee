"""The checkers on small hand-written histories: what must pass passes, what must fail fails."""
from pyetcd.robustness import linearizability
from pyetcd.robustness.history import Op, WatchRecord
from pyetcd.robustness.watchcheck import RevisionLog, check_serializable, check_watches

_ids = iter(range(10**6))


def op(kind, args, invoke, ret, result=None, status="ok", client=0):
    return Op(next(_ids), client, kind, args, invoke, ret, status, result or {})


def put(key, value, t0, t1, rev, status="ok", client=0):
    return op("put", {"key": key, "value": value, "lease": 0}, t0, t1,
              {"rev": rev} if status == "ok" else {}, status, client)


def get(key, t0, t1, rev, kv, client=1, serializable=False):
    return op("range", {"key": key, "serializable": serializable}, t0, t1,
              {"rev": rev, "kv": kv}, client=client)


def lin(ops, observed=None):
    errors, _ = linearizability.check(ops, observed or {})
    return errors


def test_sequential_history_passes():
    ops = [put("a", "v1", 0, 1, 2), get("a", 2, 3, 2, ["v1", 2, 2, 1]),
           put("a", "v2", 4, 5, 3), get("a", 6, 7, 3, ["v2", 2, 3, 2])]
    assert lin(ops) == []


def test_stale_value_on_one_key_fails_even_with_plausible_revision():
    # the read starts after put v2 returned, but sees v1 (with a header revision that is
    # not older than anything seen): only the per-key search can tell
    ops = [put("a", "v1", 0, 1, 2), put("a", "v2", 2, 3, 3),
           get("a", 4, 5, 3, ["v1", 2, 2, 1])]
    errors = lin(ops)
    assert len(errors) == 1 and "no linearization" in errors[0]


def test_concurrent_read_may_see_either_value():
    ops = [put("a", "v1", 0, 1, 2), put("a", "v2", 2, 6, 3, client=0),
           get("a", 3, 4, 2, ["v1", 2, 2, 1], client=1),
           get("a", 3.5, 5, 3, ["v2", 2, 3, 2], client=2)]
    assert lin(ops) == []


def test_cross_key_stale_revision_fails():
    ops = [put("a", "v1", 0, 1, 2), get("b", 2, 3, 1, None)]
    errors = lin(ops)
    assert errors and "already returned revision 2" in errors[0]


def test_duplicate_revision_fails():
    ops = [put("a", "v1", 0, 1, 2), put("b", "v2", 0, 1, 2, client=1)]
    assert any("both acknowledged revision 2" in e for e in lin(ops))


def test_indeterminate_write_may_appear_later_or_never():
    seen = [put("a", "v1", 0, None, None, status="unknown"),
            get("a", 5, 6, 2, ["v1", 2, 2, 1])]
    assert lin(seen, {"v1": 2}) == []
    never = [put("a", "v1", 0, None, None, status="unknown"), get("a", 5, 6, 1, None)]
    assert lin(never) == []


def test_failed_write_must_not_appear():
    ops = [put("a", "v1", 0, 1, None, status="fail"), get("a", 5, 6, 2, ["v1", 2, 2, 1])]
    assert lin(ops) != []


def test_txn_compare_must_match_model():
    base = [put("a", "v1", 0, 1, 2)]
    good = op("txn", {"key": "a", "expect": "v1", "value": "v2"}, 2, 3,
              {"rev": 3, "succeeded": True})
    assert lin(base + [good]) == []
    bad = op("txn", {"key": "a", "expect": "v0", "value": "v2"}, 2, 3,
             {"rev": 3, "succeeded": True})
    assert lin(base + [bad]) != []


def test_delete_reports_deleted_count():
    ops = [put("a", "v1", 0, 1, 2),
           op("delete", {"key": "a"}, 2, 3, {"rev": 2, "deleted": 0})]
    assert lin(ops) != []
    ops[1] = op("delete", {"key": "a"}, 2, 3, {"rev": 3, "deleted": 1})
    assert lin(ops) == []


def _ev(rev, key, value=None, create=None, version=None, prev=None):
    if value is None:
        return {"rev": rev, "type": "DELETE", "key": key, "kv": None, "prev_kv": prev, "at": 0}
    return {"rev": rev, "type": "PUT", "key": key, "kv": [value, create, rev, version],
            "prev_kv": prev, "at": 0}


def _watch(events, start=1, prev_kv=True, progress=()):
    return WatchRecord(next(_ids), "x", "", start, prev_kv, events, list(progress))


def test_watch_checker_accepts_a_correct_stream_and_flags_each_guarantee():
    good = [_ev(2, "a", "v1", 2, 1), _ev(3, "a", "v2", 2, 2, prev=["v1", 2, 2, 1]),
            _ev(4, "a", prev=["v2", 2, 3, 2])]
    w = _watch(good, progress=[4])
    ops = [put("a", "v1", 0, 1, 2), put("a", "v2", 1, 2, 3)]
    assert check_watches([w], ops, RevisionLog([w]), 4) == []
    # a second watch that skips revision 3
    gap = _watch([good[0], good[2]])
    errs = check_watches([w, gap], ops, RevisionLog([w, gap]), 4)
    assert any("skipped revision 3" in e for e in errs)
    assert any("missing from watch" in e for e in errs)
    # wrong prev_kv
    bad_prev = _watch([good[0], _ev(3, "a", "v2", 2, 2, prev=None), good[2]])
    errs = check_watches([w, bad_prev], ops, RevisionLog([w, bad_prev]), 4)
    assert any("prev_kv" in e for e in errs)
    # duplicate
    dup = _watch(good + [good[2]])
    assert any("twice" in e for e in check_watches([dup], [], RevisionLog([dup]), 4))


def test_serializable_read_must_match_a_past_state():
    w = _watch([_ev(2, "a", "v1", 2, 1), _ev(3, "a", "v2", 2, 2, prev=["v1", 2, 2, 1])])
    log = RevisionLog([w])
    ok = get("a", 9, 10, 2, ["v1", 2, 2, 1], serializable=True)   # stale but consistent
    assert check_serializable([ok], log) == []
    bad = get("a", 9, 10, 3, ["v1", 2, 2, 1], serializable=True)
    assert check_serializable([bad], log) != []


def test_prev_kv_may_be_missing_only_where_compacted():
    full = _watch([_ev(2, "a", "v1", 2, 1), _ev(3, "a", "v2", 2, 2, prev=["v1", 2, 2, 1])])
    late = _watch([_ev(3, "a", "v2", 2, 2, prev=None)], start=3)
    log = RevisionLog([full, late])
    # etcd omits prev_kv when the previous revision was compacted (compaction at 2 here)
    assert check_watches([full, late], [], log, 3, compact_rev=3) == []
    assert any("prev_kv" in e for e in check_watches([full, late], [], log, 3, compact_rev=0))
    wrong = _watch([_ev(3, "a", "v2", 2, 2, prev=["v0", 2, 2, 1])], start=3)
    log = RevisionLog([full, wrong])
    assert any("prev_kv" in e for e in check_watches([full, wrong], [], log, 3, compact_rev=3))


def test_watch_from_the_compact_revision_may_miss_a_compacted_tombstone():
    full = _watch([_ev(2, "a", "v1", 2, 1), _ev(3, "a", prev=["v1", 2, 2, 1]),
                   _ev(4, "b", "w", 4, 1)], progress=[4])
    late = _watch([_ev(4, "b", "w", 4, 1)], start=3, progress=[4])   # opened after compact 3
    ops = [op("delete", {"key": "a"}, 0, 1, {"rev": 3, "deleted": 1})]
    log = RevisionLog([full, late])
    assert check_watches([full, late], ops, log, 4, compact_rev=3) == []
    # without that compaction the same stream has a gap
    errs = check_watches([full, late], ops, log, 4, compact_rev=0)
    assert any("skipped revision 3" in e for e in errs)
    # and compaction excuses nothing above the compact revision
    late_gap = _watch([], start=3, progress=[4])
    errs = check_watches([full, late_gap], ops, RevisionLog([full, late_gap]), 4, compact_rev=3)
    assert any("skipped revision 4" in e for e in errs)
