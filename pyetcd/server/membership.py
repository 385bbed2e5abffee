"""Cluster membership: the member records, and conf changes validated and applied as etcd does.

Members live in the backend's "members" bucket (8-byte big-endian id -> JSON), so a snapshot of
the backend carries them. Removed ids are remembered in "members_removed" and never come back.
A conf change entry's context is the member's JSON (etcd's ConfigChangeContext).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from pyetcd import errors
from pyetcd.pb import raftpb


@dataclass
class MemberInfo:
    id: int
    name: str
    peer_urls: list[str]
    client_urls: list[str] = field(default_factory=list)
    is_learner: bool = False

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "peerURLs": self.peer_urls,
                "clientURLs": self.client_urls, "isLearner": self.is_learner}

    @classmethod
    def from_json(cls, d: dict) -> "MemberInfo":
        return cls(int(d["id"]), d.get("name", ""), list(d.get("peerURLs", [])),
                   list(d.get("clientURLs", [])), bool(d.get("isLearner", False)))

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True).encode()


def _k(member_id: int) -> bytes:
    return member_id.to_bytes(8, "big")


class Membership:
    def __init__(self, backend):
        self.be = backend
        self.members: dict[int, MemberInfo] = {}
        self.removed: set[int] = set()
        self.load()

    def load(self) -> None:
        self.members = {}
        for _, v in self.be.range("members", b"", b"\xff" * 9):
            m = MemberInfo.from_json(json.loads(v.decode()))
            self.members[m.id] = m
        self.removed = {int.from_bytes(k, "big") for k, _ in self.be.range("members_removed", b"", b"\xff" * 9)}

    def sorted(self) -> list[MemberInfo]:
        return [self.members[i] for i in sorted(self.members)]

    def save(self, m: MemberInfo) -> None:
        self.members[m.id] = m
        self.be.put("members", _k(m.id), m.encode())

    def _remove(self, member_id: int) -> None:
        self.members.pop(member_id, None)
        self.be.delete("members", _k(member_id))
        self.removed.add(member_id)
        self.be.put("members_removed", _k(member_id), b"removed")

    def peer_urls_in_use(self, urls, except_id: int = 0) -> bool:
        want = set(urls)
        return any(want & set(m.peer_urls) for m in self.members.values() if m.id != except_id)

    # ---- validation (before proposing, and again when applying) ----
    def validate(self, cc) -> None:
        t, nid = cc.type, cc.node_id
        if nid in self.removed:
            raise errors.ErrMemberNotFound if t != raftpb.ConfChangeAddNode else errors.ErrMemberExist
        if t in (raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode):
            m = self.members.get(nid)
            if m is not None:
                if t == raftpb.ConfChangeAddNode and m.is_learner:
                    return  # promotion
                raise errors.ErrMemberExist
            ctx = MemberInfo.from_json(json.loads(cc.context.decode()))
            if self.peer_urls_in_use(ctx.peer_urls):
                raise errors.ErrPeerURLExist
        elif t == raftpb.ConfChangeRemoveNode:
            if nid not in self.members:
                raise errors.ErrMemberNotFound
        elif t == raftpb.ConfChangeUpdateNode:
            if nid not in self.members:
                raise errors.ErrMemberNotFound
            ctx = MemberInfo.from_json(json.loads(cc.context.decode()))
            if self.peer_urls_in_use(ctx.peer_urls, except_id=nid):
                raise errors.ErrPeerURLExist

    def apply(self, cc) -> MemberInfo | None:
        """Apply a committed, validated conf change; returns the member it concerns."""
        t, nid = cc.type, cc.node_id
        if t in (raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode):
            m = self.members.get(nid)
            if m is not None and t == raftpb.ConfChangeAddNode:
                m.is_learner = False  # promotion
                self.save(m)
                return m
            m = MemberInfo.from_json(json.loads(cc.context.decode()))
            m.is_learner = t == raftpb.ConfChangeAddLearnerNode
            self.save(m)
            return m
        if t == raftpb.ConfChangeRemoveNode:
            m = self.members.get(nid)
            self._remove(nid)
            return m
        if t == raftpb.ConfChangeUpdateNode:
            m = self.members[nid]
            m.peer_urls = MemberInfo.from_json(json.loads(cc.context.decode())).peer_urls
            self.save(m)
            return m
        return None

    def set_attributes(self, member_id: int, name: str, client_urls) -> None:
        m = self.members.get(member_id)
        if m is not None:
            m.name = name
            m.client_urls = list(client_urls)
            self.save(m)

    def snapshot_data(self) -> bytes:
        return json.dumps({"members": [m.to_json() for m in self.sorted()],
                           "removed": sorted(self.removed)}).encode()


# ---- etcd's strict reconfiguration checks (--strict-reconfig-check, on by default) ----------
HEALTH_INTERVAL = 5.0  # seconds a peer must have been connected (etcd's HealthInterval)


def _started(m: MemberInfo) -> bool:
    return bool(m.name)  # a member has started once it published its attributes


def ready_to_add_voter(members) -> bool:
    voters = [m for m in members if not m.is_learner]
    nmembers, nstarted = 1 + len(voters), sum(_started(m) for m in voters)
    if nstarted == 1 and nmembers == 2:
        return True  # adding a second member to a one-member cluster (restoring data)
    return nstarted >= nmembers // 2 + 1


def ready_to_remove_voter(members, member_id: int) -> bool:
    voters = [m for m in members if not m.is_learner and m.id != member_id]
    return sum(_started(m) for m in voters) >= len(voters) // 2 + 1


def ready_to_promote(members) -> bool:
    voters = [m for m in members if not m.is_learner]
    nmembers, nstarted = 1 + len(voters), 1 + sum(_started(m) for m in voters)
    return nstarted >= nmembers // 2 + 1


def connected_since(active_since, self_id: int, members, since: float) -> int:
    """How many of `members` (self included) have been connected to us since `since`."""
    n = 0
    for m in members:
        if m.id == self_id:
            n += 1
            continue
        t = active_since(m.id)
        if t is not None and t <= since:
            n += 1
    return n
