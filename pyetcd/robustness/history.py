"""The recorded history of a run: client operations and watch streams, JSON round-trippable.

An :class:`Op` is one client request. ``invoke`` and ``ret`` are seconds on one monotonic clock
(run start = 0). ``status`` is

- ``"ok"``: the server answered; ``result`` holds what it said;
- ``"fail"``: the server answered with an error that means "not applied" (e.g. lease not found);
- ``"unknown"``: timed out or the connection broke: it may or may not have taken effect, at any
  time after ``invoke``; ``ret`` is then ``None`` (linearizable anywhere after invoke, or never).

Op kinds and their ``args`` / ``result`` fields (``kv`` is ``[value, create_rev, mod_rev,
version]`` or ``None`` when the key is absent; values are unique per write):

=============  =============================================  ===================================
kind           args                                           result (besides ``rev``: header)
=============  =============================================  ===================================
put            key, value, lease                              -
delete         key                                            deleted
txn            key, expect (value or None = absent), value    succeeded, kv (else-branch get)
range          key, serializable                              kv
lease_grant    lease, ttl                                     -
lease_revoke   lease, key (the one key attached to it)        -
=============  =============================================  ===================================
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass
class Op:
    id: int
    client: int
    kind: str
    args: dict
    invoke: float
    ret: float | None = None
    status: str = "unknown"
    result: dict = field(default_factory=dict)
    error: str = ""
    endpoint: str = ""

    @property
    def rev(self) -> int | None:
        return self.result.get("rev")

    def keys(self) -> list[str]:
        k = self.args.get("key")
        return [k] if k is not None else []

    def bumps(self) -> bool:
        """Did this acknowledged op create a new revision?"""
        if self.status != "ok":
            return False
        if self.kind == "put":
            return True
        if self.kind == "delete":
            return self.result.get("deleted", 0) > 0
        if self.kind == "txn":
            return bool(self.result.get("succeeded"))
        return False

    def describe(self) -> str:
        a = self.args
        if self.kind == "put":
            s = f"put({a['key']}={a['value']}{', lease' if a.get('lease') else ''})"
        elif self.kind == "delete":
            s = f"delete({a['key']})"
        elif self.kind == "txn":
            s = f"txn(if {a['key']}=={a['expect']} then put {a['value']})"
        elif self.kind == "range":
            s = f"{'s' if a.get('serializable') else ''}get({a['key']})"
        elif self.kind == "lease_grant":
            s = f"lease_grant({a['lease']})"
        else:
            s = f"lease_revoke({a['lease']}, {a.get('key')})"
        if self.status == "ok":
            r = {k: v for k, v in self.result.items()}
            return f"{s} -> {r}"
        return f"{s} -> {self.status} {self.error}"


@dataclass
class WatchRecord:
    """One watch stream. ``events`` are dicts: rev, type (PUT/DELETE), key, kv, prev_kv, at.
    ``progress`` holds header revisions of progress responses (no events): the server promises
    every event up to that revision has been sent. ``end`` says why it ended."""
    id: int
    endpoint: str
    prefix: str
    start_rev: int
    prev_kv: bool
    events: list[dict] = field(default_factory=list)
    progress: list[int] = field(default_factory=list)
    opened: float = 0.0
    end: str = ""
    compact_rev: int = 0
    start_from_now: bool = False   # created with start_revision 0: start_rev is from the header

    def last_seen(self) -> int:
        """Highest revision this watch provably covers (events or progress notifications)."""
        top = max((e["rev"] for e in self.events), default=0)
        top = max([top, *self.progress])
        return top


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)
    watches: list[WatchRecord] = field(default_factory=list)
    faults: list[dict] = field(default_factory=list)   # {at, end, name, detail}
    meta: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"meta": self.meta, "faults": self.faults,
                           "ops": [asdict(o) for o in self.ops],
                           "watches": [asdict(w) for w in self.watches]}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "History":
        d = json.loads(text)
        return cls(ops=[Op(**o) for o in d["ops"]],
                   watches=[WatchRecord(**w) for w in d["watches"]],
                   faults=d.get("faults", []), meta=d.get("meta", {}))
