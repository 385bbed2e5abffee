"""Linearizability of a KV history against a model of etcd, by Wing-Gong search with memoisation.

The model
---------
etcd's state is (revision, key -> (value, create_revision, mod_revision, version)). Every
successful write transaction increments the revision by one, and every response carries the
revision in its header: a write's header is the revision it created, a read's is the store's
revision when it read.

Partitioning, and why it is sound
---------------------------------
Checking one model over all keys at once is exponential in practice, so the history is split.
The header revision couples keys: a put on ``a`` moves the revision that a read on ``b`` reports.
So a key's partition cannot predict the revision exactly. Instead each partition (the keys of
ops that touch each other, joined with union-find; single keys in our traffic) runs a *weakened*
model whose revision is only a **lower bound**: a write must report a revision strictly greater
than every revision seen before it in the partition's linearization, a read one at least as
large. Any linearization of the full history, restricted to one partition, satisfies this
weaker model (the global revision only grows along a linearization, and strictly on a write),
so a partition that fails proves the full history is not linearizable: no false alarms.

What the projection cannot see is checked across all ops by :func:`check_revisions`:
acknowledged writes have pairwise distinct revisions, and real time orders revisions (if ``a``
returned before ``b`` was invoked then ``rev(b) >= rev(a)``, and ``>`` if ``b`` wrote). That
catches stale reads across keys, e.g. a read of ``b`` that misses a write to ``a`` that had
already returned.

Indeterminate operations
------------------------
An op that timed out may take effect at any point after its invocation, or never; the search
treats it as optional with no return bound. Its written value is unique, so when a watch or a
read later shows that value at some mod_revision, the op's revision is pinned to it; otherwise
its revisions are unknown and match anything (sound, only weaker). Failed and indeterminate
reads change nothing and are dropped. Serializable reads are not linearizable in etcd and are
checked against the revision log instead (see :mod:`.watchcheck`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .history import Op

INF = math.inf
Kv = tuple  # (value, create, mod, version); create/mod may be None (unknown)


@dataclass
class Verdict:
    ok: bool
    partition: list[str] = field(default_factory=list)
    message: str = ""
    ops_considered: int = 0
    nodes: int = 0
    stuck_on: list[int] = field(default_factory=list)   # op ids that could not go next


def _match(old: Kv | None, got) -> Kv | None | bool:
    """Does an observed kv (list or None) agree with the model's? Returns the bound kv or False."""
    if old is None or got is None:
        return None if (old is None and got is None) else False
    value, create, mod, version = got
    if old[0] != value or old[3] != version:
        return False
    if (old[1] is not None and old[1] != create) or (old[2] is not None and old[2] != mod):
        return False
    return (value, create, mod, version)


class PartitionModel:
    """The weakened etcd model for a set of keys. State: (tuple of kv per key, revision bound)."""

    def __init__(self, keys: list[str], observed: dict[str, int]):
        self.index = {k: i for i, k in enumerate(keys)}
        self.observed = observed   # written value -> mod_revision it was seen at

    def init(self):
        return (tuple(None for _ in self.index), 0)

    def _set(self, state, key, kv, rev):
        kvs = list(state[0])
        kvs[self.index[key]] = kv
        return (tuple(kvs), rev)

    def _put(self, state, key, value, r):
        old = state[0][self.index[key]]
        if r is not None and r <= state[1]:
            return []
        if old is None:
            kv = (value, r, r, 1)
        else:
            kv = (value, old[1], r, old[3] + 1)
        return [self._set(state, key, kv, state[1] if r is None else r)]

    def step(self, state, op: Op) -> list:
        key = op.args.get("key")
        kvs, rev = state
        old = kvs[self.index[key]] if key is not None else None
        known = op.status == "ok"
        r = op.result.get("rev") if known else None
        k = op.kind
        if k == "put":
            if not known:
                r = self.observed.get(op.args["value"])
            return self._put(state, key, op.args["value"], r)
        if k == "txn":
            cond = (old is None) if op.args["expect"] is None else (
                old is not None and old[0] == op.args["expect"])
            if not known:
                if not cond:
                    return []   # took the read-only branch: no effect, same as never happening
                return self._put(state, key, op.args["value"], self.observed.get(op.args["value"]))
            if cond != op.result["succeeded"]:
                return []
            if cond:
                return self._put(state, key, op.args["value"], r)
            bound = _match(old, op.result.get("kv"))
            if bound is False or r < rev:
                return []
            return [self._set(state, key, bound, r)]
        if k == "range":
            bound = _match(old, op.result.get("kv"))
            if bound is False or r < rev:
                return []
            return [self._set(state, key, bound, r)]
        if k in ("delete", "lease_revoke"):
            if not known:
                return [self._set(state, key, None, rev)] if old is not None else []
            if k == "delete" and op.result.get("deleted", 0) != (0 if old is None else 1):
                return []
            if (old is None and r < rev) or (old is not None and r <= rev):
                return []
            return [self._set(state, key, None, r)]
        raise ValueError(f"op kind {k} has no model")


def _relevant(op: Op) -> bool:
    if op.kind == "lease_grant" or op.status == "fail":
        return False
    if op.kind == "range":
        return op.status == "ok" and not op.args.get("serializable")
    return op.status in ("ok", "unknown")


def partitions(ops: list[Op]) -> list[tuple[list[str], list[Op]]]:
    """Group ops into independent key sets (union-find over keys each op touches)."""
    parent: dict[str, str] = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for op in ops:
        ks = op.keys()
        for a in ks[1:]:
            parent[find(a)] = find(ks[0])
        for a in ks:
            find(a)
    groups: dict[str, tuple[list[str], list[Op]]] = {}
    for k in list(parent):
        groups.setdefault(find(k), ([], []))[0].append(k)
    for op in ops:
        ks = op.keys()
        if ks:
            groups[find(ks[0])][1].append(op)
    return [(sorted(ks), o) for ks, o in groups.values()]


def check_partition(keys: list[str], ops: list[Op], observed: dict[str, int],
                    max_nodes: int = 2_000_000) -> Verdict:
    ops = sorted((o for o in ops if _relevant(o)), key=lambda o: o.invoke)
    n = len(ops)
    model = PartitionModel(keys, observed)
    inv = [o.invoke for o in ops]
    ret = [o.ret if (o.status == "ok" and o.ret is not None) else INF for o in ops]
    unknown = [i for i in range(n) if ret[i] == INF]
    unknown_mask = sum(1 << i for i in unknown)
    required = ((1 << n) - 1) & ~unknown_mask
    init = (0, model.init())
    seen = {init}
    stack = [init]
    nodes = 0
    best = (-1, 0, None, [])
    while stack:
        mask, state = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            return Verdict(False, keys, f"search gave up after {max_nodes} nodes (inconclusive)",
                           n, nodes)
        done = mask & required
        if done == required:
            return Verdict(True, keys, "", n, nodes)
        filled = mask | unknown_mask
        lo = (~filled & (filled + 1)).bit_length() - 1
        j, m = lo, INF
        while j < n and inv[j] <= m:
            if not (mask >> j) & 1 and ret[j] < m:
                m = ret[j]
            j += 1
        cands = [i for i in unknown if i < lo and not (mask >> i) & 1]
        cands += [i for i in range(lo, j) if not (mask >> i) & 1]
        depth = done.bit_count()
        if depth > best[0]:
            best = (depth, mask, state, cands)
        for i in cands:
            for ns in model.step(state, ops[i]):
                node = (mask | (1 << i), ns)
                if node not in seen:
                    seen.add(node)
                    stack.append(node)
    depth, mask, state, cands = best
    stuck = [ops[i] for i in cands if ret[i] != INF] or [ops[i] for i in cands]
    lines = [f"no linearization of {len(keys)} key(s) {keys[:5]}: {depth} of "
             f"{required.bit_count()} acknowledged ops placed; model state then: {state}",
             "none of these could go next:"]
    lines += [f"  op {o.id} [{o.invoke:.3f}, {o.ret if o.ret is None else round(o.ret, 3)}] "
              f"{o.describe()}" for o in stuck[:10]]
    return Verdict(False, keys, "\n".join(lines), n, nodes, [o.id for o in stuck])


def check_revisions(ops: list[Op]) -> list[str]:
    """Cross-key revision checks (see module docstring). Returns error strings."""
    errors = []
    writers: dict[int, Op] = {}
    for o in ops:
        if o.bumps():
            prev = writers.get(o.rev)
            if prev is not None:
                errors.append(f"ops {prev.id} and {o.id} both acknowledged revision {o.rev}: "
                              f"{prev.describe()} / {o.describe()}")
            writers[o.rev] = o
    lin = [o for o in ops if o.status == "ok" and o.ret is not None and o.rev is not None
           and o.kind != "lease_grant" and not o.args.get("serializable")]
    by_ret = sorted(lin, key=lambda o: o.ret)
    p, top, top_op = 0, 0, None
    for o in sorted(lin, key=lambda o: o.invoke):
        while p < len(by_ret) and by_ret[p].ret < o.invoke:
            if by_ret[p].rev > top:
                top, top_op = by_ret[p].rev, by_ret[p]
            p += 1
        if o.rev < top or (o.bumps() and o.rev == top):
            errors.append(f"op {o.id} {o.describe()} (invoked {o.invoke:.3f}) reports revision "
                          f"{o.rev}, but op {top_op.id} {top_op.describe()} had already returned "
                          f"revision {top} at {top_op.ret:.3f}")
            if len(errors) > 20:
                break
    return errors


def check(ops: list[Op], observed: dict[str, int]) -> tuple[list[str], dict]:
    """Run every partition and the cross-key checks. Returns (errors, stats)."""
    errors = check_revisions(ops)
    stats = {"partitions": 0, "nodes": 0, "ops": 0}
    for keys, part in partitions(ops):
        v = check_partition(keys, part, observed)
        stats["partitions"] += 1
        stats["nodes"] += v.nodes
        stats["ops"] += v.ops_considered
        if not v.ok:
            errors.append(v.message)
    return errors, stats
