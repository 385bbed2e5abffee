"""etcdctl's usage/help page (cobrautl's template), rendered through a Go-compatible tabwriter."""
from __future__ import annotations

from pyetcd.cli import goutil
from pyetcd.cli.flags import flag_usages

VERSION = "3.5.1"
API_VERSION = "3.5"


def _leaves(cmd, prefix=""):
    for c in sorted(cmd.children, key=lambda c: c.name):
        name = f"{prefix}{c.name}"
        if c.run or c.name == "help":
            yield name, c.short
        yield from _leaves(c, name + " ")


def use_line(cmd) -> str:
    parent = cmd.parent.path + " " if cmd.parent else ""
    line = parent + cmd.use
    if "[flags]" not in line:
        line += " [flags]"
    return line


def usage(cmd) -> str:
    name = cmd.path[len("etcdctl "):] if cmd.parent else cmd.name
    s = f"NAME:\n\t{name} - {cmd.short}\n\nUSAGE:\n\t{use_line(cmd)}\n"
    if cmd.parent is None:
        s += f"\nVERSION:\n\t{VERSION}\n"
    if cmd.children:
        s += f"\nAPI VERSION:\n\t{API_VERSION}\n"
        s += "\n\nCOMMANDS:\n" + "".join(f"\t{n}\t{short}\n" for n, short in _leaves(cmd))
    if cmd.long:
        s += "\nDESCRIPTION:\n" + "".join(f"\t{ln}\n" for ln in cmd.long.strip("\n\t ").split("\n"))
    local = cmd.flags + cmd.persistent
    if local:
        s += "\nOPTIONS:\n" + flag_usages(local)
    inherited = cmd.inherited
    if inherited:
        s += "\nGLOBAL OPTIONS:\n" + flag_usages(inherited)
    s += "\n"
    return goutil.tabwrite(s)
