"""The revision log rebuilt from watch streams, and the watch guarantees checked against it.

All watches of a run cover the run's whole key prefix, so together they should tell, for every
revision, exactly which keys changed and how. :class:`RevisionLog` merges them (two watches that
disagree about a revision is an error) and knows which revisions it covers. On it we check
etcd's documented watch guarantees:

- **ordered**: a watch's events come in revision order, and never twice;
- **no gaps / reliable**: a watch delivers every event between its start revision and the last
  revision it provably covered (the highest event or progress-notification revision; a
  progress notification promises all earlier events were sent); each revision in that range
  has at least one event, because every revision is one write transaction under our prefix;
- **acknowledged writes**: each acknowledged write appears, at its revision, with its key and
  value, in every watch that covers that revision;
- **prev_kv and event kvs**: where the log is complete from revision 1, each event's prev_kv
  is the key's previous state and a PUT's create_revision/version follow from it.

Serializable reads are checked here too: a serializable Range returning header revision R must
show the key exactly as the log has it at R (a consistent, if stale, snapshot).
"""
from __future__ import annotations

import bisect

from .history import Op, WatchRecord


def _ev_sig(e: dict):
    return (e["type"], e["key"], tuple(e["kv"]) if e.get("kv") else None)


class RevisionLog:
    def __init__(self, watches: list[WatchRecord]):
        self.errors: list[str] = []
        self.events: dict[int, dict[str, dict]] = {}
        intervals = []
        for w in watches:
            for e in w.events:
                slot = self.events.setdefault(e["rev"], {})
                have = slot.get(e["key"])
                if have is None:
                    slot[e["key"]] = e
                elif _ev_sig(have) != _ev_sig(e) and len(self.errors) < 20:
                    self.errors.append(f"watches disagree at revision {e['rev']} key {e['key']}: "
                                       f"{_ev_sig(have)} vs {_ev_sig(e)} (watch {w.id})")
            lo, hi = max(w.start_rev, 1), w.last_seen()
            if hi >= lo:
                intervals.append((lo, hi))
        # complete_upto: every revision in [1, complete_upto] is covered by some watch.
        self.complete_upto = 0
        for lo, hi in sorted(intervals):
            if lo > self.complete_upto + 1:
                break
            self.complete_upto = max(self.complete_upto, hi)
        self.by_key: dict[str, list[int]] = {}
        for rev in sorted(self.events):
            for key in self.events[rev]:
                self.by_key.setdefault(key, []).append(rev)

    def state_at(self, key: str, rev: int):
        """The key's kv [value, create, mod, version] at ``rev`` (None if absent). Only
        meaningful for rev <= complete_upto."""
        revs = self.by_key.get(key, [])
        i = bisect.bisect_right(revs, rev)
        if i == 0:
            return None
        e = self.events[revs[i - 1]][key]
        return list(e["kv"]) if e["type"] == "PUT" else None

    def observed_revisions(self, ops: list[Op]) -> dict[str, int]:
        """written value -> mod_revision, from watch events and from reads' results."""
        seen: dict[str, int] = {}
        for slot in self.events.values():
            for e in slot.values():
                if e["type"] == "PUT":
                    seen[e["kv"][0]] = e["kv"][2]
        for o in ops:
            kv = o.result.get("kv") if o.status == "ok" else None
            if kv:
                seen.setdefault(kv[0], kv[2])
        return seen


def check_watches(watches: list[WatchRecord], ops: list[Op], log: RevisionLog,
                  final_rev: int | None = None, compact_rev: int = 0) -> list[str]:
    """``compact_rev``: the highest revision compacted during the run. etcd leaves prev_kv
    out when the previous revision is compacted, so only a present prev_kv is checked there;
    and a watch that starts at or below a compaction is not held to events at or below it."""
    errors = list(log.errors)

    def err(msg):
        if len(errors) < 60:
            errors.append(msg)
    # The log's own kvs follow from the previous state (where the log is complete).
    for rev in sorted(log.events):
        if rev > log.complete_upto:
            break
        for key, e in log.events[rev].items():
            prev = log.state_at(key, rev - 1)
            if e["type"] == "PUT":
                want_create = prev[1] if prev else rev
                want_version = prev[3] + 1 if prev else 1
                kv = e["kv"]
                if kv[2] != rev or kv[1] != want_create or kv[3] != want_version:
                    err(f"event at revision {rev} key {key} has kv {kv}, expected create "
                        f"{want_create}, mod {rev}, version {want_version}")
            elif prev is None:
                err(f"DELETE event at revision {rev} for key {key} that did not exist")
    if final_rev is not None and log.complete_upto >= final_rev:
        for rev in range(2, final_rev + 1):
            if rev not in log.events:
                err(f"revision {rev} has no event in any watch, though watches cover it")
    for w in watches:
        last = w.last_seen()
        prev_pos = (0, "")
        seen = set()
        for e in w.events:
            pos = (e["rev"], e["key"])
            if (e["rev"], e["key"]) in seen:
                err(f"watch {w.id} delivered revision {e['rev']} key {e['key']} twice")
            elif e["rev"] < prev_pos[0]:
                err(f"watch {w.id} delivered revision {e['rev']} after revision {prev_pos[0]}")
            if e["rev"] < w.start_rev:
                err(f"watch {w.id} started at revision {w.start_rev} but delivered {e['rev']}")
            seen.add(pos)
            prev_pos = max(prev_pos, pos)
            if w.prev_kv and e["rev"] - 1 <= log.complete_upto:
                want = log.state_at(e["key"], e["rev"] - 1)
                got = e.get("prev_kv")
                if got is None and e["rev"] - 1 < compact_rev:
                    pass   # previous revision may be compacted away: etcd omits prev_kv
                elif (list(got) if got else None) != want:
                    err(f"watch {w.id} event at revision {e['rev']} key {e['key']} has prev_kv "
                        f"{got}, but the key was {want}")
        # A watch starting at or below a compaction may not see what compaction removed
        # (e.g. a tombstone at exactly the compact revision): etcd guarantees nothing there.
        lowest = max(w.start_rev, 2, compact_rev + 1 if w.start_rev <= compact_rev else 0)
        for rev in range(lowest, last + 1):
            slot = log.events.get(rev)
            if slot is None:
                continue
            for key in slot:
                if (rev, key) not in seen:
                    err(f"watch {w.id} (from revision {w.start_rev}, covered up to {last}) "
                        f"skipped revision {rev} key {key}")
    index = {w.id: {(e["rev"], e["key"]): e for e in w.events} for w in watches}
    for o in ops:
        if not o.bumps():
            continue
        key = o.args["key"]
        for w in watches:
            if not (max(w.start_rev, 1) <= o.rev <= w.last_seen()):
                continue
            if w.start_rev <= compact_rev and o.rev <= compact_rev:
                continue   # compacted history: see above
            ev = index[w.id].get((o.rev, key))
            want_type = "DELETE" if o.kind == "delete" else "PUT"
            if ev is None or ev["type"] != want_type or (
                    want_type == "PUT" and ev["kv"][0] != o.args["value"]):
                err(f"acknowledged op {o.id} {o.describe()} is missing from watch {w.id} "
                    f"(covers {w.start_rev}..{w.last_seen()}); the watch had {ev}")
    return errors


def check_serializable(ops: list[Op], log: RevisionLog) -> list[str]:
    errors = []
    for o in ops:
        if o.kind != "range" or o.status != "ok" or not o.args.get("serializable"):
            continue
        if o.rev > log.complete_upto:
            continue
        want = log.state_at(o.args["key"], o.rev)
        if (list(o.result["kv"]) if o.result.get("kv") else None) != want:
            errors.append(f"serializable read op {o.id} {o.describe()} at revision {o.rev}: "
                          f"the key was {want} at that revision")
            if len(errors) > 20:
                break
    return errors
