"""The real etcdctl 3.5 `watch` against real etcd and against pyetcd: --rev, --prefix, --prev-kv,
a range, -w json, the `-- cmd` exec form, interactive mode (-i) and a compacted watch give the
same output. Needs the server to serve Watch (see conftest.needs_watch)."""
import json
import os
import subprocess
import time

from pyetcd.testing import procs

from conftest import needs_watch

pytestmark = needs_watch

BEFORE = [["put", "k1", "v1"], ["put", "k2", "v2"], ["put", "k3", "v3"], ["put", "k1", "v1b"], ["del", "k2"]]
AFTER = [["put", "k1", "x"], ["put", "k2", "y"], ["put", "k4", "z"], ["txn"], ["del", "k", "--prefix"],
         ["put", "k1", "again"], ["put", "other", "o"], ["put", "k2", "last"]]
TXN = "\nput k5 a\nput k6 b\nput k1 t\n\n\n"  # no compares; three puts in one revision
EXEC = 'echo "EXEC $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY=$ETCD_WATCH_VALUE @$ETCD_WATCH_REVISION"'
WATCHES = {
    "key-rev": (["watch", "k1", "--rev", "2"], None),
    "prefix": (["watch", "k", "--prefix", "--rev", "1"], None),
    "prev-kv": (["watch", "k", "--prefix", "--prev-kv", "--rev", "3"], None),
    "range": (["watch", "k1", "k3", "--rev", "1"], None),
    "from-now": (["watch", "k", "--prefix"], None),
    "json": (["watch", "k2", "--rev", "1", "-w", "json"], None),
    "exec": (["watch", "k1", "--rev", "2", "--", "sh", "-c", EXEC], None),
    "interactive": (["watch", "-i"], "watch nothing-here --rev 1\nwatch k --prefix --rev 4 --prev-kv\n"),
}


def _env():
    e = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    e["ETCDCTL_API"] = "3"
    return e


def _normalise(out: str) -> str:
    lines = []
    for line in out.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            lines.append(line)
            continue
        if isinstance(doc, dict) and isinstance(doc.get("Header"), dict):
            for f in ("cluster_id", "member_id", "raft_term", "revision"):
                doc["Header"].pop(f, None)  # ids differ by nature; catch-up revision by timing
        lines.append(json.dumps(doc, sort_keys=True))
    return "\n".join(lines)


def _ctl(member, *args, stdin=None):
    r = procs.etcdctl(member.endpoint, *args, stdin=stdin)
    assert r.returncode == 0, r.stderr
    return r


def _session(member, tmp, want_lines=None):
    """Write BEFORE, start every watch, write AFTER, wait for output; returns name -> stdout."""
    for args in BEFORE:
        _ctl(member, *args)
    procs_, files = {}, {}
    try:
        for name, (args, stdin) in WATCHES.items():
            out = open(os.path.join(tmp, f"{member.kind}-{name}.out"), "w+")
            files[name] = out
            p = subprocess.Popen([procs.etcdctl_bin(), "--endpoints", member.endpoint, *args], stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                 env=_env(), text=True, start_new_session=True)
            if stdin:
                p.stdin.write(stdin)
                p.stdin.flush()  # stays open: etcdctl -i exits at end of input
            procs_[name] = p
        time.sleep(1.0)  # "from-now" must be registered before AFTER is written
        for args in AFTER:
            _ctl(member, *args, stdin=TXN if args == ["txn"] else None)

        def read_all():
            res = {}
            for name, f in files.items():
                f.flush()
                with open(f.name) as g:
                    res[name] = g.read()
            return res
        deadline, last, stable_since = time.monotonic() + 30, None, time.monotonic()
        while time.monotonic() < deadline:
            cur = read_all()
            if want_lines is not None:
                if all(cur[n].count("\n") >= want_lines[n] for n in cur):
                    time.sleep(0.5)
                    break
            elif cur != last:
                last, stable_since = cur, time.monotonic()
            elif time.monotonic() - stable_since > 2.0:
                break
            time.sleep(0.1)
    finally:  # a failing assertion above must not leave etcdctl processes behind
        for p in procs_.values():
            p.terminate()
        for p in procs_.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    out = read_all()
    for f in files.values():
        f.close()
    return {n: _normalise(s) for n, s in out.items()}


def test_etcdctl_watch_matches_real_etcd(etcd_and_pyetcd, tmp_path):
    etcd, py = etcd_and_pyetcd
    want = _session(etcd, str(tmp_path))
    got = _session(py, str(tmp_path), {n: s.count("\n") + 1 for n, s in want.items()})
    for name in WATCHES:
        assert got[name] == want[name], f"etcdctl {' '.join(WATCHES[name][0])}"
    # the outputs are real: every watch saw several events, the exec form ran its command
    assert all(want[n].count("PUT") >= 2 for n in WATCHES if n != "json")
    assert 'EXEC "PUT" "k1"="again"' in want["exec"] and "DELETE" in want["prev-kv"]
    assert "k5\na\nPUT\nk6\nb\nPUT\nk1\nt" in want["prefix"]  # the txn's three events


def test_etcdctl_watch_on_compacted_revision_matches(etcd_and_pyetcd):
    res = []
    for m in etcd_and_pyetcd:
        for i in range(5):
            _ctl(m, "put", "c", str(i))
        _ctl(m, "compaction", "4")
        r = procs.etcdctl(m.endpoint, "watch", "c", "--rev", "2", timeout=30)
        res.append((r.returncode, r.stdout, r.stderr))
    assert res[1] == res[0]
    assert res[0][0] != 0 and "compacted" in res[0][2]
