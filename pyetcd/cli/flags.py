"""A pflag/cobra-compatible flag parser: etcdctl's flag syntax, defaults display and error texts.

Leaf module (standard library only) so that parsing a command line costs almost nothing.
"""
from __future__ import annotations

from pyetcd.cli import goutil


class FlagError(Exception):
    """A command-line parse error; cobra prints it, then the command's usage."""


class HelpRequested(Exception):
    pass


class Flag:
    __slots__ = ("name", "kind", "default", "usage", "short", "noopt")

    def __init__(self, name: str, kind: str, default, usage: str, short: str = "", noopt=None):
        self.name = name
        self.kind = kind  # bool | string | int | uint | duration | strings
        self.default = default
        self.usage = usage
        self.short = short
        # pflag's NoOptDefVal: the value a bare --flag means (bools: "true")
        self.noopt = "true" if kind == "bool" and noopt is None else noopt

    @property
    def def_text(self) -> str:
        d = self.default
        if self.kind == "bool":
            return "true" if d else "false"
        if self.kind == "duration":
            return goutil.format_duration(d)
        if self.kind == "strings":
            return "[" + ",".join(d) + "]"
        if self.kind == "string":
            return goutil.quote(d)
        return str(d)

    def convert(self, value: str, current, changed: bool):
        k = self.kind
        if k == "bool":
            return goutil.parse_bool(value)
        if k == "int":
            return goutil.parse_int(value, 0)
        if k == "uint":
            return goutil.parse_uint(value, 0)
        if k == "duration":
            return goutil.parse_duration(value)
        if k == "strings":
            items = [] if value == "" else _csv_split(value)
            return (list(current) + items) if changed else items
        return value

    def display_name(self) -> str:
        return f"-{self.short}, --{self.name}" if self.short else f"--{self.name}"


def _csv_split(value: str) -> list[str]:
    if '"' not in value:
        return value.split(",")
    import csv
    return next(csv.reader([value]))


class Parsed:
    def __init__(self, values: dict):
        self.values = values
        self.changed: set = set()
        self.args: list = []
        self.args_len_at_dash = -1

    def __getitem__(self, name):
        return self.values[name]

    def get(self, name, default=None):
        return self.values.get(name, default)


def set_value(flag: Flag, parsed: Parsed, value: str) -> None:
    try:
        parsed.values[flag.name] = flag.convert(value, parsed.values.get(flag.name),
                                                flag.name in parsed.changed)
    except goutil.GoParseError as e:
        raise FlagError(f'invalid argument {goutil.quote(value)} for '
                        f'{goutil.quote(flag.display_name())} flag: {e}')
    parsed.changed.add(flag.name)


def parse(argv: list[str], flags: list[Flag]) -> Parsed:
    by_name = {f.name: f for f in flags}
    by_short = {f.short: f for f in flags if f.short}
    p = Parsed(values={f.name: (list(f.default) if f.kind == "strings" else f.default)
                       for f in flags})
    args = list(argv)
    while args:
        s = args.pop(0)
        if len(s) < 2 or s[0] != "-":
            p.args.append(s)
            continue
        if s[1] == "-":
            if len(s) == 2:
                p.args_len_at_dash = len(p.args)
                p.args.extend(args)
                break
            name = s[2:]
            if name[:1] in ("-", "="):
                raise FlagError(f"bad flag syntax: {s}")
            name, eq, val = name.partition("=")
            fl = by_name.get(name)
            if fl is None:
                if name == "help":
                    raise HelpRequested()
                raise FlagError(f"unknown flag: --{name}")
            if eq:
                value = val
            elif fl.noopt is not None:
                value = fl.noopt
            elif args:
                value = args.pop(0)
            else:
                raise FlagError(f"flag needs an argument: {s}")
            set_value(fl, p, value)
            continue
        shorts = s[1:]
        while shorts:
            c = shorts[0]
            fl = by_short.get(c)
            if fl is None:
                if c == "h":
                    raise HelpRequested()
                raise FlagError(f"unknown shorthand flag: '{c}' in -{shorts}")
            rest = shorts[1:]
            if len(shorts) > 2 and shorts[1] == "=":
                value, rest = shorts[2:], ""
            elif fl.noopt is not None:
                value = fl.noopt
            elif len(shorts) > 1:
                value, rest = shorts[1:], ""
            elif args:
                value = args.pop(0)
            else:
                raise FlagError(f"flag needs an argument: '{c}' in -{shorts}")
            set_value(fl, p, value)
            shorts = rest
    return p


def strip_flags(args: list[str], flags: list[Flag]) -> list[str]:
    """cobra's stripFlags: the words that may name a subcommand (quirks included)."""
    noopt_long = {f.name for f in flags if f.noopt is not None}
    noopt_short = {f.short for f in flags if f.short and f.noopt is not None}
    commands = []
    args = list(args)
    while args:
        s = args.pop(0)
        if s == "--":
            break
        takes_long = s.startswith("--") and "=" not in s and s[2:] not in noopt_long
        takes_short = (s.startswith("-") and "=" not in s and len(s) == 2
                       and s[1:] not in noopt_short)
        if takes_long or takes_short:
            if len(args) <= 1:
                break
            args.pop(0)
            continue
        if s and not s.startswith("-"):
            commands.append(s)
    return commands


def flag_usages(flags: list[Flag]) -> str:
    """etcdctl's flag listing (cobrautl), sorted by name, before tab alignment."""
    out = []
    for f in sorted(flags, key=lambda f: f.name):
        fmt = f"  -{f.short}, --{f.name}" if f.short else f"   {f.short}   --{f.name}"
        val = f.def_text
        fmt += f"[={val}]" if f.noopt is not None else f"={val}"
        out.append(f"{fmt}\t{f.usage}\n")
    return "".join(out)
