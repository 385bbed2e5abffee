"""After the faults: durability (no acknowledged write lost) and replica agreement (HashKV).

Both run once the nemesis has healed everything and traffic has stopped. ``final_rev`` is the
revision of a linearizable read taken then; every member must reach it.

Durability: each member's state at ``final_rev`` (a serializable Range at that revision, read
locally) must equal the state the revision log says (where the log is complete), and in any
case must still hold every acknowledged write: a key written at revision r has, at final_rev,
a mod_revision >= r, and the same value if it is exactly r. Each member's MVCC history since
the last compaction (read back with a watch from there) must also hold every acknowledged
write at its revision, even one overwritten since, and equal the watch log.

Agreement: HashKV at the same revision must agree on every member that reports the same
compact revision (HashKV hashes the MVCC history between the compact revision and the
requested one, so members with equal compaction must hash equally).
"""
from __future__ import annotations

import time

import grpc

from pyetcd.keyrange import prefix_end
from pyetcd.pb import rpc, rpc_grpc

from .history import Op
from .traffic import kv_list
from .watchcheck import RevisionLog


def final_revision(endpoints: list[str], prefix: str, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for ep in endpoints:
            try:
                with grpc.insecure_channel(ep) as ch:
                    p = prefix.encode()
                    r = rpc_grpc.KVStub(ch).Range(rpc.RangeRequest(
                        key=p, range_end=prefix_end(p), keys_only=True), timeout=3)
                    return r.header.revision
            except grpc.RpcError as e:
                last = e
        time.sleep(0.3)
    raise RuntimeError(f"no linearizable read after the run: {last}")


def member_state(endpoint: str, prefix: str, rev: int, timeout: float = 30.0) -> dict:
    """key -> kv at ``rev`` as this member holds it locally (waits for it to catch up)."""
    p = prefix.encode()
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(endpoint) as ch:
        kv = rpc_grpc.KVStub(ch)
        while True:
            try:
                head = kv.Range(rpc.RangeRequest(key=p, serializable=True, keys_only=True),
                                timeout=3).header.revision
                if head >= rev:
                    r = kv.Range(rpc.RangeRequest(key=p, range_end=prefix_end(p), revision=rev,
                                                  serializable=True), timeout=10)
                    return {x.key.decode(): kv_list(x) for x in r.kvs}
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"{endpoint} did not reach revision {rev}")
            time.sleep(0.2)


def member_history(endpoint: str, prefix: str, start: int, final_rev: int,
                   timeout: float = 30.0) -> dict[tuple[int, str], list]:
    """The member's MVCC history of the prefix from ``start`` to ``final_rev``, read with a
    watch from ``start``: (rev, key) -> [type, value]."""
    p = prefix.encode()
    req = rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
        key=p, range_end=prefix_end(p), start_revision=start))
    out: dict[tuple[int, str], list] = {}
    with grpc.insecure_channel(endpoint) as ch:
        stream = rpc_grpc.WatchStub(ch).Watch(iter([req]), timeout=timeout)
        try:
            for resp in stream:
                if resp.canceled:
                    raise RuntimeError(f"history watch on {endpoint} from {start} canceled: "
                                       f"{resp.cancel_reason} (compact {resp.compact_revision})")
                for ev in resp.events:
                    typ = "PUT" if ev.type == 0 else "DELETE"
                    out[(ev.kv.mod_revision, ev.kv.key.decode())] = [
                        typ, ev.kv.value.decode() if typ == "PUT" else None]
                if any(ev.kv.mod_revision >= final_rev for ev in resp.events) or final_rev < start:
                    break
        finally:
            stream.cancel()
    return out


def check_histories(histories: dict[str, dict], ops: list[Op], log: RevisionLog, start: int,
                    final_rev: int) -> list[str]:
    """Every member's MVCC history from ``start`` must hold every acknowledged write at its
    revision, and (where the watch log is complete) be exactly the log."""
    errors = []
    want = {}
    if log.complete_upto >= final_rev:
        want = {(rev, key): [e["type"], e["kv"][0] if e["kv"] else None]
                for rev, slot in log.events.items() if start <= rev <= final_rev
                for key, e in slot.items()}
    for ep, hist in histories.items():
        if want and hist != want:
            diff = sorted(set(hist) ^ set(want)) or sorted(
                k for k in hist if hist[k] != want.get(k))
            k = diff[0]
            errors.append(f"member {ep}'s history from revision {start} differs from the watch "
                          f"log in {len(diff)} place(s), first at revision {k[0]} key {k[1]}: "
                          f"member {hist.get(k)}, log {want.get(k)}")
        for o in ops:
            if not o.bumps() or o.rev < start:
                continue
            got = hist.get((o.rev, o.args["key"]))
            expect = ["DELETE", None] if o.kind == "delete" else ["PUT", o.args["value"]]
            if got != expect:
                errors.append(f"acknowledged op {o.id} {o.describe()} is not in member {ep}'s "
                              f"history at revision {o.rev}: found {got}")
                if len(errors) > 20:
                    return errors
    return errors


def check_durability(states: dict[str, dict], ops: list[Op], log: RevisionLog,
                     final_rev: int) -> list[str]:
    errors = []
    expected = None
    if log.complete_upto >= final_rev:
        expected = {}
        for key in log.by_key:
            kv = log.state_at(key, final_rev)
            if kv is not None:
                expected[key] = kv
    for ep, state in states.items():
        if expected is not None and state != expected:
            diff = [k for k in sorted(set(state) | set(expected))
                    if state.get(k) != expected.get(k)]
            errors.append(f"member {ep} at revision {final_rev} differs from the watch log on "
                          f"{len(diff)} key(s), e.g. {diff[0]}: member has "
                          f"{state.get(diff[0])}, log has {expected.get(diff[0])}")
        for o in ops:
            if not (o.bumps() and o.kind in ("put", "txn")):
                continue
            kv = state.get(o.args["key"])
            if kv is None or kv[2] < o.rev or (kv[2] == o.rev and kv[0] != o.args["value"]):
                # A later delete can legitimately remove it: only flag if the log agrees.
                if kv is None and expected is not None and o.args["key"] not in expected:
                    continue
                if kv is None and expected is None:
                    continue
                errors.append(f"acknowledged op {o.id} {o.describe()} lost on member {ep}: "
                              f"key holds {kv} at revision {final_rev}")
                if len(errors) > 20:
                    return errors
    return errors


def hash_kv(endpoint: str, rev: int) -> tuple[int, int]:
    with grpc.insecure_channel(endpoint) as ch:
        r = rpc_grpc.MaintenanceStub(ch).HashKV(rpc.HashKVRequest(revision=rev), timeout=20)
        return r.hash, r.compact_revision


def check_agreement(endpoints: list[str], revs: list[int]) -> tuple[list[str], dict]:
    errors, table = [], {}
    for rev in revs:
        got = {}
        for ep in endpoints:
            try:
                got[ep] = hash_kv(ep, rev)
            except grpc.RpcError as e:
                if "compacted" in (e.details() or ""):
                    continue
                errors.append(f"HashKV({rev}) on {ep} failed: {e.details()}")
        table[rev] = got
        by_compact: dict[int, set[int]] = {}
        for ep, (h, c) in got.items():
            by_compact.setdefault(c, set()).add(h)
        for c, hashes in by_compact.items():
            if len(hashes) > 1:
                errors.append(f"HashKV at revision {rev} (compact revision {c}) disagrees "
                              f"across members: {got}")
    return errors, table
