"""The real etcdctl 3.5 against real etcd and against pyetcd: the same command sequence gives the
same output, apart from header ids and raft_term (which differ by nature)."""
import json

from pyetcd.testing import procs

TXN_STDIN = [
    # compares, blank line, success ops, blank line, failure ops
    'mod("k1") > "0"\n\nput k1 "changed"\nget k1\n\nput k1 "failed"\n',
    'value("k2") = "v2"\nversion("k3") < "5"\n\ndel k2\nget k --prefix\n\nput x y\n',
    'create("nope") = "0"\n\nput nope yes\n\n',
    'lease("k4") = "0"\n\nget k4 --keys-only\n\n',
]

SEQUENCE = [
    ["put", "k1", "v1"], ["put", "k2", "v2"], ["put", "k3", "v3"], ["put", "k1", "v1b"],
    ["put", "k4", "v4", "--prev-kv"], ["put", "k5", "v5", "-w", "json"],
    ["put", "k1", "--ignore-value", "--prev-kv"], ["put", "zz", "--ignore-value"],
    ["put", "k1", "x", "--lease", "1234"],
    ["get", "k1"], ["get", "k", "--prefix"], ["get", "k", "--prefix", "-w", "json"],
    ["get", "k2", "--from-key"], ["get", "k", "--prefix", "--limit", "2"],
    ["get", "k", "--prefix", "--limit", "2", "-w", "json"],
    ["get", "k", "--prefix", "--sort-by", "VERSION", "--order", "DESCEND"],
    ["get", "k", "--prefix", "--sort-by", "MODIFY", "--order", "ASCEND"],
    ["get", "k", "--prefix", "--sort-by", "CREATE"], ["get", "k", "--prefix", "--sort-by", "VALUE"],
    ["get", "k", "--prefix", "--order", "DESCEND", "--keys-only"],
    ["get", "k", "--prefix", "--count-only", "-w", "json"], ["get", "k", "--prefix", "--keys-only"],
    ["get", "k1", "--rev", "2"], ["get", "k1", "--rev", "5", "-w", "json"], ["get", "k1", "--rev", "99"],
    ["get", "", "--from-key", "--keys-only"], ["get", "k1", "-w", "fields"],
    ["get", "k1", "k4"], ["get", "missing"], ["get", "missing", "-w", "json"],
    ["get", "k", "--prefix", "--print-value-only"],
    ["txn"], ["txn"], ["txn"], ["txn", "-w", "json"],
    ["del", "k3"], ["del", "k3"], ["del", "k", "--prefix", "--prev-kv"], ["put", "k1", "again"],
    ["del", "a", "--from-key", "-w", "json"],
    ["put", "c1", "1"], ["put", "c1", "2"], ["put", "c1", "3"],
    ["compaction", "3"], ["compaction", "3"], ["compaction", "1000"],
    ["get", "c1", "--rev", "2"], ["get", "c1", "--rev", "3"], ["get", "c1", "-w", "json"],
    ["compaction", "--physical", "5"], ["get", "c1", "--rev", "4"],
    ["put", "", "v"], ["get", ""], ["del", ""],
]


def _normalise(out: str) -> str:
    """Zero the fields of a JSON header that differ between two clusters by nature."""
    lines = []
    for line in out.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            if not line.startswith(('"ClusterID" :', '"MemberID" :', '"RaftTerm" :')):
                lines.append(line)  # -w fields prints the same header fields one per line
            continue
        if isinstance(doc, dict) and isinstance(doc.get("header"), dict):
            for f in ("cluster_id", "member_id", "raft_term"):
                doc["header"].pop(f, None)
        lines.append(json.dumps(doc, sort_keys=True))
    return "\n".join(lines)


def _run(member, seq):
    out, txns = [], iter(TXN_STDIN)
    for args in seq:
        stdin = next(txns) if args[0] == "txn" else None
        r = procs.etcdctl(member.endpoint, *args, stdin=stdin)
        out.append((args, r.returncode, _normalise(r.stdout), r.stderr.strip().splitlines()[-1:] if r.stderr else []))
    return out


def test_etcdctl_sequence_matches_real_etcd(both):
    etcd, py = both
    want, got = _run(etcd, SEQUENCE), _run(py, SEQUENCE)
    for w, g in zip(want, got):
        assert g == w, f"etcdctl {' '.join(w[0])}"
    # The sequence really exercised errors and successes (a test that cannot fail is no test).
    assert any(rc != 0 for _, rc, _, _ in want) and sum(rc == 0 for _, rc, _, _ in want) > 30
