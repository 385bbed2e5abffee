"""Real etcdctl 3.5 against a three-member real etcd cluster and a three-member pyetcd cluster:
the same output shape for member list/add/remove/promote, endpoint status/health/hashkv
--cluster and move-leader. Ids, URLs, sizes, indexes and timings differ by nature and are
normalised; everything else (columns, wording, exit codes, errors) must match."""
import re
import time

import pytest

from pyetcd.testing import procs
from pyetcd.testing.cluster import Cluster

_SUBS = [
    (re.compile(r"\b[0-9a-f]{14,16}\b"), "<ID>"),
    (re.compile(r"http://127\.0\.0\.1:\d+"), "<URL>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "<EP>"),
    (re.compile(r"\b\d+(\.\d+)? ?(kB|MB|B)\b"), "<SIZE>"),
    (re.compile(r"took = [0-9.]+(µs|ms|s)"), "took = <T>"),
    (re.compile(r"\b\d+\b"), "<N>"),
    (re.compile(r"pyetcd-test-[\w-]+|etcd-cluster"), "<TOKEN>"),
    (re.compile(r"-{2,}"), "-"),   # table widths follow the (normalised) contents
    (re.compile(r" {2,}"), " "),
]


def _norm(text: str) -> list[str]:
    out = []
    for line in text.strip().splitlines():
        for rx, rep in _SUBS:
            line = rx.sub(rep, line)
        if line.startswith('ETCD_INITIAL_CLUSTER="'):  # listed in member-id order
            body = line[len('ETCD_INITIAL_CLUSTER="'):-1]
            line = 'ETCD_INITIAL_CLUSTER="' + ",".join(sorted(body.split(","))) + '"'
        out.append(line.rstrip())
    return sorted(out)  # members are listed by id, and ids differ by nature


def _scenario(c: Cluster):
    time.sleep(6)  # etcd refuses reconfiguration until peers have been connected for 5 s
    ep = c.members[c.leader()].endpoint
    leader_id = c.member_id(c.leader())
    follower = next(n for n in c.running() if n != c.leader())
    results = []
    raw = []

    def run(*args):
        r = procs.etcdctl(ep, *args)
        raw.append(f"$ etcdctl {' '.join(args)}\n{r.stdout}{r.stderr[-1500:]}")
        errs = [x for x in r.stderr.splitlines() if x.startswith("Error:")]
        results.append((_norm(" ".join(args[:2])), r.returncode, _norm(r.stdout), _norm("\n".join(errs))))
        return r

    run("member", "list")
    run("member", "list", "-w", "table")
    run("endpoint", "health", "--cluster")
    run("endpoint", "status", "--cluster")
    run("endpoint", "status", "--cluster", "-w", "table")
    run("endpoint", "hashkv", "--cluster")
    port = procs.free_port()
    r = run("member", "add", "newbie", f"--peer-urls=http://127.0.0.1:{port}", "--learner")
    new_id = re.search(r"Member ([0-9a-f]+) added", r.stdout).group(1)
    run("member", "promote", new_id)                 # not started: not in sync
    run("member", "promote", "%x" % leader_id)       # not a learner
    run("member", "remove", new_id)
    run("member", "remove", new_id)                  # already removed
    run("move-leader", "%x" % c.member_id(follower))
    return results, raw


@pytest.mark.parametrize("kind", ["pyetcd"])
def test_cluster_commands_match_real_etcd_shape(tmp_path, kind):
    with Cluster("etcd", str(tmp_path / "etcd"), size=3, proxy=False) as ce:
        want, _ = _scenario(ce)
    with Cluster(kind, str(tmp_path / kind), size=3, proxy=False) as cp:
        got, raw = _scenario(cp)
    for w, g, r in zip(want, got, raw):
        assert g == w, f"etcdctl {w[0]}\n{r}"
