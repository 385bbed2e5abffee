"""Differential suite: endpoint, member, lease, maintenance, auth, watch, snapshot."""
import os
import re

import pytest

FORMATS = ["simple", "json", "fields", "protobuf", "table"]


def _ids(out: bytes, pattern: bytes) -> int:
    m = re.search(pattern, out)
    assert m, out
    return int(m.group(1), 16)


def test_setup_and_hashkv(pair):
    for kv in (("put", "h1", "v1"), ("put", "h2", "v2"), ("del", "h1")):
        pair.compare(list(kv))
    for f in FORMATS:
        pair.compare(["endpoint", "hashkv", "-w", f])
    pair.compare(["endpoint", "hashkv", "--rev", "2"])
    pair.compare(["endpoint", "hashkv", "--cluster", "-w", "table"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_endpoint_status(pair, fmt):
    ra, rb = pair.both("endpoint", "status", "-w", fmt)
    assert ra.rc == rb.rc
    if fmt == "protobuf":
        assert ra.err.strip() == rb.err.strip() == b"Error: protobuf not supported as output format"
        return
    # raft index, applied index and db size depend on each server's internal history: compare shape
    norm = lambda b: re.sub(rb"\d+ kB|\b\d{2,3}\b|\"(dbSize|dbSizeInUse|raftIndex|raftAppliedIndex|revision)\":\d+|\"(DBSize|RaftIndex|RaftAppliedIndex|Revision)\" : \d+", b"N", b)  # noqa: E731
    oa, ob = norm(pair.normalise(ra.out, "a")), norm(pair.normalise(rb.out, "b"))
    oa, ob = re.sub(rb"-+", b"-", oa), re.sub(rb"-+", b"-", ob)
    oa, ob = re.sub(rb" +", b" ", oa), re.sub(rb" +", b" ", ob)
    assert oa == ob


@pytest.mark.parametrize("args", [["endpoint", "health", "-w", f] for f in FORMATS]
                         + [["endpoint", "health", "--cluster"], ["endpoint", "status", "--cluster", "-w", "json"]])
def test_endpoint_health(pair, args):
    if "status" in args:
        ra, rb = pair.both(*args)
        assert ra.rc == rb.rc == 0
        assert pair.normalise(ra.out, "a").split(b'"Status"')[0] == pair.normalise(rb.out, "b").split(b'"Status"')[0]
        return
    pair.compare(args)


MEMBER_READS = [["member", "list", "-w", f] for f in FORMATS] + [
    ["member", "list", "-w", "json", "--hex"], ["member", "list", "--hex"],
    ["member", "add"], ["member", "add", "x"], ["member", "add", "x", "--peer-urls=bad"],
    ["member", "remove"], ["member", "remove", "zz"], ["member", "remove", "1234"],
    ["member", "update", "1234"], ["member", "update", "1234", "--peer-urls=http://1.2.3.4:2380"],
    ["member", "promote", "1234"], ["member", "promote"], ["member"], ["member", "bogus"],
]


@pytest.mark.parametrize("args", MEMBER_READS, ids=[" ".join(a) for a in MEMBER_READS])
def test_member(pair, args):
    pair.compare(args)


@pytest.mark.parametrize("fmt", ["simple", "json"])
def test_member_learner_lifecycle(pair, fmt):
    url = "http://127.0.0.1:1" + ("1" if fmt == "simple" else "2")
    ra, rb = pair.both("member", "add", "newbie", "--learner", f"--peer-urls={url}", "-w", fmt)
    assert ra.rc == rb.rc == 0, (ra, rb)
    if fmt == "simple":
        ida, idb = _ids(ra.out, rb"Member +([0-9a-f]+) added"), _ids(rb.out, rb"Member +([0-9a-f]+) added")
    else:
        ida = int(re.search(rb'"member":\{"ID":(\d+)', ra.out).group(1))
        idb = int(re.search(rb'"member":\{"ID":(\d+)', rb.out).group(1))
    pair.map_ids(idb, ida)
    oa, ob = pair.normalise(ra.out, "a"), pair.normalise(rb.out, "b")

    def sort_cluster(m):  # member order follows the random ids
        return b'ETCD_INITIAL_CLUSTER="' + b",".join(sorted(m.group(1).split(b","))) + b'"'
    oa, ob = (re.sub(rb'ETCD_INITIAL_CLUSTER="([^"]*)"', sort_cluster, o) for o in (oa, ob))
    if fmt == "json":
        import json
        oa, ob = json.loads(oa), json.loads(ob)
        for o in (oa, ob):
            o["members"].sort(key=lambda m: m["ID"])
    assert oa == ob
    # member order follows the (random) member ids: compare order-insensitively
    for f in FORMATS:
        ra, rb = pair.both("member", "list", "-w", f)
        oa, ob = pair.normalise(ra.out, "a"), pair.normalise(rb.out, "b")
        assert ra.rc == rb.rc == 0
        if f == "json":
            import json
            ja, jb = json.loads(oa), json.loads(ob)
            ja["members"].sort(key=lambda m: m["ID"])
            jb["members"].sort(key=lambda m: m["ID"])
            assert ja == jb
        elif f == "protobuf":
            # the learner's random id is varint-encoded here: compare the member names and URLs only
            assert re.findall(rb"default|newbie|http://[0-9.:]+", oa) == re.findall(rb"default|newbie|http://[0-9.:]+", ob) or \
                sorted(re.findall(rb"http://[0-9.:]+", oa)) == sorted(re.findall(rb"http://[0-9.:]+", ob))
        else:  # a table's column width follows the random id's length (%x has no padding)
            oa, ob = (re.sub(rb"-{2,}", b"--", re.sub(rb" {2,}", b" ", o)) for o in (oa, ob))
            assert sorted(oa.split(b"\n")) == sorted(ob.split(b"\n"))
    pair.compare(["member", "promote", f"{ida:x}"], args_b=["member", "promote", f"{idb:x}"])
    if fmt == "json":  # the member list in the answer follows the (random) member ids
        import json
        ra, rb = pair.both("member", "update", f"{ida:x}", f"--peer-urls={url}0", "-w", fmt,
                           args_b=["member", "update", f"{idb:x}", f"--peer-urls={url}0", "-w", fmt])
        assert ra.rc == rb.rc == 0, (ra, rb)
        ja, jb = (json.loads(pair.normalise(r.out, side)) for r, side in ((ra, "a"), (rb, "b")))
        for j in (ja, jb):
            j["members"].sort(key=lambda m: m["ID"])
        assert ja == jb
    else:
        pair.compare(["member", "update", f"{ida:x}", f"--peer-urls={url}0", "-w", fmt],
                     args_b=["member", "update", f"{idb:x}", f"--peer-urls={url}0", "-w", fmt])
    pair.compare(["member", "remove", f"{ida:x}", "-w", fmt], args_b=["member", "remove", f"{idb:x}", "-w", fmt])


def test_leases(pair):
    ra, rb = pair.both("lease", "grant", "100")
    assert ra.rc == rb.rc == 0
    la, lb = _ids(ra.out, rb"lease ([0-9a-f]+) granted"), _ids(rb.out, rb"lease ([0-9a-f]+) granted")
    pair.map_ids(lb, la)
    assert pair.normalise(ra.out, "a") == pair.normalise(rb.out, "b")
    ha, hb = f"{la:x}", f"{lb:x}"
    pair.compare(["put", "lk", "v", "--lease", ha], args_b=["put", "lk", "v", "--lease", hb])
    for f in FORMATS:
        pair.compare(["lease", "list", "-w", f])
        pair.compare(["lease", "timetolive", ha, "--keys", "-w", f], args_b=["lease", "timetolive", hb, "--keys", "-w", f])
        pair.compare(["lease", "keep-alive", "--once", ha, "-w", f], args_b=["lease", "keep-alive", "--once", hb, "-w", f])
    pair.compare(["lease", "timetolive", ha], args_b=["lease", "timetolive", hb])
    # keep-alive without --once renews at once, then every TTL/3: one line within a few seconds
    pair.compare(["lease", "keep-alive", ha], args_b=["lease", "keep-alive", hb], check_rc=False, kill_after=3)
    pair.compare(["get", "lk", "-w", "json"])
    for f in ["json", "fields", "protobuf"]:
        ra, rb = pair.both("lease", "grant", "50", "-w", f)
        assert ra.rc == rb.rc == 0
    pair.compare(["lease", "revoke", ha, "-w", "json"], args_b=["lease", "revoke", hb, "-w", "json"])
    pair.compare(["lease", "revoke", ha], args_b=["lease", "revoke", hb])
    pair.compare(["get", "lk"])


LEASE_ERRORS = [["lease", "revoke", "zzz"], ["lease", "revoke"], ["lease", "grant", "abc"], ["lease", "grant"],
                ["lease", "timetolive", "1234"], ["lease", "timetolive", "1234", "-w", "json"],
                ["lease", "keep-alive", "--once", "1234"], ["lease", "keep-alive"], ["lease", "timetolive"],
                ["lease", "revoke", "1234"], ["lease"]]


@pytest.mark.parametrize("args", LEASE_ERRORS, ids=[" ".join(a) for a in LEASE_ERRORS])
def test_lease_errors(pair, args):
    pair.compare(args)


MAINT = [["alarm", "list", "-w", f] for f in FORMATS] + [
    ["alarm", "disarm"], ["alarm", "disarm", "-w", "json"], ["alarm"],
    ["defrag"], ["defrag", "-w", "json"], ["defrag", "--cluster"],
    ["move-leader"], ["move-leader", "zz"], ["move-leader", "1234"],
    ["version"], ["version", "-w", "json"],
    ["snapshot", "save"], ["snapshot", "status"], ["snapshot", "status", "/nonexistent/x.db"],
    ["check"], ["endpoint"], ["auth"], ["user"], ["role"], ["snapshot"],
]


@pytest.mark.parametrize("args", MAINT, ids=[" ".join(a) for a in MAINT])
def test_maintenance(pair, args):
    pair.compare(args)


def test_snapshot_save(pair, tmp_path):
    pa, pb = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    ra, rb = pair.both("snapshot", "save", pa, args_b=["snapshot", "save", pb])
    assert ra.rc == rb.rc == 0
    assert ra.out.replace(b"a.db", b"X") == rb.out.replace(b"b.db", b"X")
    assert os.path.getsize(pb) > 0
    # both tools read the same file: status (etcdutl's offline reader) must agree exactly
    for f in FORMATS:
        pair.compare(["snapshot", "status", pa, "-w", f])
    pair.compare(["snapshot", "status", pb])
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"not a bbolt file\n" * 300)
    pair.compare(["snapshot", "status", str(bad)])
    pair.compare(["snapshot", "save", pa, "--endpoints", pair.a.endpoint],
                 args_b=["snapshot", "save", pb, "--endpoints", pair.b.endpoint])


AUTH = [
    ["user", "add"], ["user", "add", "root", "--new-user-password=rootpw"],
    ["user", "add", "bob", "--new-user-password=pw", "-w", "json"],
    ["user", "add", "bob", "--new-user-password=pw"], ["user", "add", "carol", "--no-password", "-w", "fields"],
    ["user", "add", "dave:dpw"], ["user", "add", ":x"],
    *[["user", "list", "-w", f] for f in FORMATS],
    *[["user", "get", "bob", "-w", f] for f in FORMATS],
    ["user", "get", "nobody"], ["user", "get"],
    ["role", "add", "r1"], ["role", "add", "r1"], ["role", "add", "r2", "-w", "json"],
    ["role", "add", "r3", "-w", "fields"], ["role", "add", "r4", "-w", "protobuf"],
    ["role", "grant-permission", "r1", "read", "foo"],
    ["role", "grant-permission", "r1", "readwrite", "p/", "--prefix"],
    ["role", "grant-permission", "r1", "write", "a", "z", "-w", "json"],
    ["role", "grant-permission", "r1", "write", "k", "--from-key"],
    ["role", "grant-permission", "r1", "bogus", "k"], ["role", "grant-permission", "r1", "read"],
    ["role", "grant-permission", "r1", "read", "a", "b", "--prefix"],
    *[["role", "get", "r1", "-w", f] for f in FORMATS],
    *[["role", "list", "-w", f] for f in FORMATS],
    ["user", "grant-role", "bob", "r1"], ["user", "grant-role", "bob", "r2", "-w", "json"],
    ["user", "grant-role", "bob"], ["user", "get", "bob", "--detail"], ["user", "get", "bob"],
    ["user", "revoke-role", "bob", "r2"], ["user", "revoke-role", "bob", "r9"],
    ["role", "revoke-permission", "r1", "foo"], ["role", "revoke-permission", "r1", "p/", "--prefix"],
    ["role", "revoke-permission", "r1", "a", "z", "-w", "fields"], ["role", "revoke-permission", "r1", "nothere"],
    ["role", "revoke-permission", "r1"],
    ["role", "delete", "r2"], ["role", "delete", "r2"], ["user", "delete", "carol", "-w", "json"],
    ["user", "delete", "carol"],
    ["user", "passwd", "dave", "--interactive=false"],
    *[["auth", "status", "-w", f] for f in FORMATS],
    ["auth", "enable"], ["auth", "status"], ["get", "foo"],
    ["get", "foo", "--user", "root:rootpw"], ["get", "foo", "--user", "root", "--password", "rootpw"],
    ["get", "foo", "--user", "root:wrong"], ["get", "foo", "--user", "bob:pw"],
    ["get", "foo", "--user", "nobody:x", "-w", "json"],
    ["auth", "status", "--user", "root:rootpw", "-w", "json"],
    ["auth", "disable", "--user", "root:rootpw"], ["auth", "disable"], ["auth", "enable", "extra"],
]


@pytest.mark.parametrize("args", AUTH, ids=[" ".join(a) for a in AUTH])
def test_auth(pair, args):
    stdin = "newpw\n" if "passwd" in args else None
    pair.compare(args, stdin=stdin)


WATCHES = [[], ["-w", "json"], ["-w", "fields"], ["-w", "protobuf"], ["--prev-kv"], ["--hex"]]


def test_watch_history(pair):
    r0 = pair.compare(["put", "w/1", "a", "-w", "json"])[0]
    rev = int(re.search(rb'"revision":(\d+)', r0.out).group(1))
    pair.compare(["put", "w/1", "b"])
    pair.compare(["del", "w/1"])
    pair.compare(["put", "w/2", "c"])
    for extra in WATCHES:
        pair.compare(["watch", "w/", "--prefix", "--rev", str(rev), *extra], check_rc=False, kill_after=3)
    pair.compare(["watch", "w/1", "--rev", str(rev)], check_rc=False, kill_after=3)
    pair.compare(["watch", "w/1", "w/3", "--rev", str(rev), "-w", "json"], check_rc=False, kill_after=3)
    script = 'echo "$ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE $ETCD_WATCH_REVISION"'
    pair.compare(["watch", "w/", "--prefix", "--rev", str(rev), "--", "sh", "-c", script],
                 check_rc=False, kill_after=3)
    for stdin in (f"watch w/1 --rev {rev}\n", "bogus k1\n", "watch\n", "watch a b --prefix\n"):
        pair.compare(["watch", "-i"], stdin=stdin)


WATCH_ERRORS = [["watch"], ["watch", "a", "b", "--prefix"], ["watch", "a", "--"], ["watch", "-w", "table", "x"]]


@pytest.mark.parametrize("args", WATCH_ERRORS, ids=[" ".join(a) for a in WATCH_ERRORS])
def test_watch_errors(pair, args):
    pair.compare(args, check_rc="table" not in args, kill_after=3 if "table" in args else None)


def test_watch_compacted(pair):
    r = pair.compare(["put", "wc", "x", "-w", "json"])[0]
    rev = int(re.search(rb'"revision":(\d+)', r.out).group(1))
    pair.compare(["compaction", str(rev)])
    for extra in ([], ["-w", "json"], ["-w", "fields"]):
        pair.compare(["watch", "wc", "--rev", "1", *extra])


@pytest.mark.parametrize("name,stdin", [("pwuser1", "pw\npw\n"), ("pwuser2", "pw1\npw2\n"), ("pwuser3", "\n")])
def test_user_add_password_prompt(pair, name, stdin):
    # etcdctl's terminal-less prompt also runs `stty` (its complaints on stderr are not compared)
    ra, rb = pair.both("user", "add", name, stdin=stdin)
    assert (ra.rc, ra.out) == (rb.rc, rb.out), (ra, rb)
    assert ra.err.splitlines()[-1:] == rb.err.splitlines()[-1:] or not rb.err
