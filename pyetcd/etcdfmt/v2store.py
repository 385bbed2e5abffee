"""The v2 store's snapshot JSON, as etcd 3.5 writes it into ``.snap`` files.

In etcd 3.5 a raft snapshot's data is ``json.Marshal`` of the v2 store (v2store.store.Save). The
store keeps the cluster's membership under ``/0`` (``/0/members/<id>/raftAttributes``,
``/0/members/<id>/attributes``, ``/0/removed_members/<id>``, ``/0/version``) and v2 keys under
``/1``. This module builds that JSON for the writes a restore makes (``create`` of permanent
files, with their parent directories) and reads the membership back out of such JSON.

The JSON, field for field (Go struct order; Go sorts map keys; unexported fields are absent)::

    {"Root": node, "WatcherHub": {"EventHistory": {"Queue": {"Events": [1000 slots, null when
     empty], "Size", "Front", "Back", "Capacity": 1000}, "StartIndex", "LastIndex"}},
     "CurrentIndex", "Stats": {16 counters}, "CurrentVersion": 2}
    node = {"Path", "CreatedIndex", "ModifiedIndex", "ExpireTime": "0001-01-01T00:00:00Z",
            "Value", "Children": {name: node} for a directory, null for a file}
    event = {"action": "create", "node": {"key", "value", "modifiedIndex", "createdIndex"}}
"""
from __future__ import annotations

import json
import posixpath

from pyetcd.cli.gojson import go_string

CLUSTER_PREFIX = "/0"
KEYS_PREFIX = "/1"
EVENT_HISTORY_CAPACITY = 1000
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's time.Time{}: a permanent node
STORE_VERSION = 2

_STATS = ("getsSuccess", "getsFail", "setsSuccess", "setsFail", "deleteSuccess", "deleteFail",
          "updateSuccess", "updateFail", "createSuccess", "createFail", "compareAndSwapSuccess",
          "compareAndSwapFail", "compareAndDeleteSuccess", "compareAndDeleteFail", "expireCount",
          "watchers")


class V2StoreError(Exception):
    pass


class _Node:
    __slots__ = ("path", "created", "modified", "value", "children")

    def __init__(self, path: str, index: int, value: str = "", is_dir: bool = False):
        self.path = path
        self.created = self.modified = index
        self.value = value
        self.children: dict[str, _Node] | None = {} if is_dir else None

    def to_json(self) -> str:
        if self.children is None:
            kids = "null"
        else:
            kids = "{" + ",".join(f"{go_string(k)}:{self.children[k].to_json()}"
                                  for k in sorted(self.children, key=lambda s: s.encode())) + "}"
        return (f'{{"Path":{go_string(self.path)},"CreatedIndex":{self.created},'
                f'"ModifiedIndex":{self.modified},"ExpireTime":"{ZERO_TIME}",'
                f'"Value":{go_string(self.value)},"Children":{kids}}}')


class V2Store:
    """Just enough of etcd's v2 store for what restore writes into it: permanent files created
    under directories that appear on demand, the event history, the stats, and Save()."""

    def __init__(self, namespaces=(CLUSTER_PREFIX, KEYS_PREFIX)):
        self.current_index = 0
        self.root = _Node("/", 0, is_dir=True)
        for ns in namespaces:
            self.root.children[posixpath.basename(ns)] = _Node(ns, 0, is_dir=True)
        self.events: list[str | None] = [None] * EVENT_HISTORY_CAPACITY
        self.size = self.front = self.back = 0
        self.start_index = self.last_index = 0
        self._event_index: list[int] = [0] * EVENT_HISTORY_CAPACITY
        self.stats = dict.fromkeys(_STATS, 0)

    def create(self, node_path: str, value: str) -> int:
        """store.Create(path, dir=false, value, unique=false, permanent): returns its index."""
        node_path = posixpath.normpath(posixpath.join("/", node_path))
        nxt = self.current_index + 1
        dir_name, name = posixpath.split(node_path)
        d = self.root
        for part in (p for p in dir_name.split("/") if p):
            child = d.children.get(part)
            if child is None:
                child = _Node(posixpath.join(d.path, part), nxt, is_dir=True)
                d.children[part] = child
            elif child.children is None:
                self.stats["createFail"] += 1
                raise V2StoreError(f"Not a directory ({child.path})")
            d = child
        if name in d.children:
            self.stats["createFail"] += 1
            raise V2StoreError(f"Key already exists ({node_path})")
        d.children[name] = _Node(node_path, nxt, value)
        self.current_index = nxt
        self._add_event('{"action":"create","node":{"key":%s,"value":%s,"modifiedIndex":%d,'
                        '"createdIndex":%d}}' % (go_string(node_path), go_string(value), nxt, nxt), nxt)
        self.stats["createSuccess"] += 1
        return nxt

    def _add_event(self, ev: str, index: int) -> None:
        """eventQueue.insert on a ring of EVENT_HISTORY_CAPACITY slots."""
        cap = EVENT_HISTORY_CAPACITY
        self.events[self.back] = ev
        self._event_index[self.back] = index
        self.back = (self.back + 1) % cap
        if self.size == cap:
            self.front = (self.front + 1) % cap
        else:
            self.size += 1
        self.last_index = index
        self.start_index = self._event_index[self.front]

    def save(self) -> bytes:
        """store.Save(): the JSON etcd puts in a raft snapshot's data."""
        events = ",".join(e if e is not None else "null" for e in self.events)
        stats = ",".join(f'"{k}":{v}' for k, v in self.stats.items())
        return (f'{{"Root":{self.root.to_json()},"WatcherHub":{{"EventHistory":{{"Queue":'
                f'{{"Events":[{events}],"Size":{self.size},"Front":{self.front},'
                f'"Back":{self.back},"Capacity":{EVENT_HISTORY_CAPACITY}}},'
                f'"StartIndex":{self.start_index},"LastIndex":{self.last_index}}}}},'
                f'"CurrentIndex":{self.current_index},"Stats":{{{stats}}},'
                f'"CurrentVersion":{STORE_VERSION}}}').encode()


def member_store_key(member_id: int) -> str:
    """/0/members/<id>: the id as types.ID.String() prints it, lower-case hex without padding."""
    return f"{CLUSTER_PREFIX}/members/{member_id:x}"


def membership_from_json(data: bytes) -> dict:
    """The membership kept in a v2 store snapshot: {"members": {id: {"peerURLs": [...],
    "isLearner": bool, "name": str, "clientURLs": [...]}}, "removed": [ids], "version": str|None}
    (etcd 3.5 recovers its member list from here on restart)."""
    root = json.loads(data)["Root"]

    def child(node, *names):
        for n in names:
            if node is None or not node.get("Children"):
                return None
            node = node["Children"].get(n)
        return node

    out = {"members": {}, "removed": [], "version": None}
    members = child(root, "0", "members")
    for key, m in sorted(((members or {}).get("Children") or {}).items()):
        info: dict = {}
        for attr in ("raftAttributes", "attributes"):
            n = child(m, attr)
            if n is not None and n.get("Value"):
                info.update(json.loads(n["Value"]))
        out["members"][int(key, 16)] = info
    removed = child(root, "0", "removed_members")
    out["removed"] = sorted(int(k, 16) for k in ((removed or {}).get("Children") or {}))
    version = child(root, "0", "version")
    if version is not None:
        out["version"] = version.get("Value")
    return out
