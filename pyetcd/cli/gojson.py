"""Go's encoding/json applied to etcd's gogoproto structs, which is what `-w json` prints.

Rules: struct field order = .proto declaration order; key = the proto field name (gogo's json tag);
`omitempty` drops zero scalars, empty lists/bytes and unset messages; bytes are base64; 64-bit
integers are plain numbers; a oneof becomes a Go interface field named in CamelCase whose value
wraps the set field (or null); strings get Go's HTML-safe escaping.
"""
from __future__ import annotations

import base64

from google.protobuf.descriptor import FieldDescriptor as FD

_ESC = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
        "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_string(s: str | bytes) -> str:
    if isinstance(s, bytes):
        s = s.decode("utf-8", "replace")
    out = ['"']
    for ch in s:
        e = _ESC.get(ch)
        if e is not None:
            out.append(e)
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _scalar(fd, v) -> str:
    t = fd.type
    if t == FD.TYPE_BYTES:
        return '"' + base64.b64encode(v).decode() + '"'
    if t == FD.TYPE_STRING:
        return go_string(v)
    if t == FD.TYPE_BOOL:
        return "true" if v else "false"
    if t == FD.TYPE_MESSAGE:
        return message(v)
    return str(int(v))


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


# Fields newer than etcd 3.5.1's structs: etcdctl 3.5 never prints them.
_NOT_IN_35 = {"StatusResponse": {"storageVersion", "dbSizeQuota", "downgradeInfo"},
              "HashKVResponse": {"hash_revision"}}


def fields(m) -> list[str]:
    """The `"key":value` members of message m, in Go struct order."""
    parts = []
    skip = _NOT_IN_35.get(m.DESCRIPTOR.name, ())
    seen_oneofs = set()
    for fd in m.DESCRIPTOR.fields:
        if fd.name in skip:
            continue
        oneof = fd.containing_oneof
        if oneof is not None:
            if oneof.name in seen_oneofs:
                continue
            seen_oneofs.add(oneof.name)
            which = m.WhichOneof(oneof.name)
            key = go_string(_camel(oneof.name))
            if which is None:
                parts.append(f"{key}:null")
            else:
                f2 = m.DESCRIPTOR.fields_by_name[which]
                v = getattr(m, which)
                inner = "" if (f2.type != FD.TYPE_MESSAGE and not v) else \
                    f"{go_string(which)}:{_scalar(f2, v)}"
                parts.append(f"{key}:{{{inner}}}")
            continue
        v = getattr(m, fd.name)
        if fd.is_repeated:
            if not len(v):
                continue
            enc = "[" + ",".join(_scalar(fd, x) for x in v) + "]"
        elif fd.type == FD.TYPE_MESSAGE:
            if not m.HasField(fd.name):
                continue
            enc = message(v)
        else:
            if not v:
                continue
            enc = _scalar(fd, v)
        parts.append(f"{go_string(fd.name)}:{enc}")
    return parts


def message(m) -> str:
    return "{" + ",".join(fields(m)) + "}"


def header_fields(resp) -> list[str]:
    """An embedded *pb.ResponseHeader: its fields flattened into the outer object."""
    if not resp.HasField("header"):
        return []
    return fields(resp.header)


def obj(pairs) -> str:
    """A Go struct literal from (key, already-encoded value) pairs."""
    return "{" + ",".join(f"{go_string(k)}:{v}" for k, v in pairs) + "}"
