"""Small re-implementations of Go standard-library formatting that etcdctl's output depends on.

Leaf module: imports nothing of ours and nothing heavy, so the CLI starts quickly.
"""
from __future__ import annotations

# --- strconv -------------------------------------------------------------------------------

_BOOL_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_BOOL_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class GoParseError(ValueError):
    pass


def parse_bool(s: str) -> bool:
    if s in _BOOL_TRUE:
        return True
    if s in _BOOL_FALSE:
        return False
    raise GoParseError(f'strconv.ParseBool: parsing "{s}": invalid syntax')


_INT_RE = {10: "0123456789", 16: "0123456789abcdefABCDEF", 8: "01234567", 2: "01"}


def _digits(s: str, base: int, fn: str, orig: str) -> int:
    if not s or s.strip(_INT_RE[base]):
        raise GoParseError(f'strconv.{fn}: parsing "{orig}": invalid syntax')
    return int(s, base)


def parse_int(s: str, base: int = 10, bits: int = 64, fn: str = "ParseInt") -> int:
    """strconv.ParseInt (base 0 means Go's prefix rules, as pflag's int flags use)."""
    orig = s
    neg = False
    if s[:1] in "+-" and s:
        neg = s[0] == "-"
        s = s[1:]
    if base == 0:
        base = 10
        low = s.lower()
        if low.startswith("0x"):
            base, s = 16, s[2:]
        elif low.startswith("0b"):
            base, s = 2, s[2:]
        elif low.startswith("0o"):
            base, s = 8, s[2:]
        elif len(s) > 1 and s.startswith("0"):
            base, s = 8, s[1:]
        s = s.replace("_", "")  # base-0 parsing allows underscores
    v = _digits(s, base, fn, orig)
    v = -v if neg else v
    lim = 1 << (bits - 1)
    if v >= lim or v < -lim:
        raise GoParseError(f'strconv.{fn}: parsing "{orig}": value out of range')
    return v


def parse_uint(s: str, base: int = 10, bits: int = 64) -> int:
    orig = s
    if base == 0:
        return parse_int(s, 0, bits + 1, "ParseUint") if not s.startswith(("-", "+")) else _bad_uint(orig)
    if s[:1] in "+-":
        _bad_uint(orig)
    v = _digits(s, base, "ParseUint", orig)
    if v >= (1 << bits):
        raise GoParseError(f'strconv.ParseUint: parsing "{orig}": value out of range')
    return v


def _bad_uint(orig):
    raise GoParseError(f'strconv.ParseUint: parsing "{orig}": invalid syntax')


# --- time.Duration -------------------------------------------------------------------------

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
          "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DUR_RE = None


def parse_duration(s: str) -> int:
    """time.ParseDuration; returns nanoseconds."""
    global _DUR_RE
    import re
    if _DUR_RE is None:
        _DUR_RE = re.compile(r"([0-9]*(?:\.[0-9]*)?)([a-zµμ]+)")
    orig = s
    bad = GoParseError(f'time: invalid duration "{orig}"')
    neg = False
    if s[:1] in "+-" and s:
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise bad
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _DUR_RE.match(s, pos)
        if not m or m.group(1) in ("", "."):
            if m is None and s[pos:] and not s[pos:].strip("0123456789."):
                raise GoParseError(f'time: missing unit in duration "{orig}"')
            raise bad
        unit = m.group(2)
        if unit not in _UNITS:
            raise GoParseError(f'time: unknown unit "{unit}" in duration "{orig}"')
        total += float(m.group(1)) * _UNITS[unit]
        pos = m.end()
    return int(-total if neg else total)


def format_duration(ns: int) -> str:
    """time.Duration.String()."""
    if ns == 0:
        return "0s"
    neg = ns < 0
    u = -ns if neg else ns
    if u < 1_000_000_000:
        if u < 1_000:
            out = f"{u}ns"
        elif u < 1_000_000:
            out = _frac(u, 1_000) + "µs"
        else:
            out = _frac(u, 1_000_000) + "ms"
    else:
        h, rem = divmod(u, 3_600_000_000_000)
        m, rem = divmod(rem, 60_000_000_000)
        out = _frac(rem, 1_000_000_000) + "s"
        if h or m:
            out = f"{m}m" + out
        if h:
            out = f"{h}h" + out
    return "-" + out if neg else out


def _frac(v: int, unit: int) -> str:
    whole, frac = divmod(v, unit)
    if not frac:
        return str(whole)
    width = len(str(unit)) - 1
    return f"{whole}." + f"{frac:0{width}d}".rstrip("0")


# --- fmt %q and friends ---------------------------------------------------------------------

def quote(b: bytes | str) -> str:
    """fmt's %q for a string (strconv.Quote): Go escapes, printable UTF-8 kept."""
    if isinstance(b, str):
        b = b.encode("utf-8", "surrogateescape")
    out = ['"']
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            ch = chr(c)
            if ch == '"' or ch == "\\":
                out.append("\\" + ch)
            elif 0x20 <= c < 0x7F:
                out.append(ch)
            else:
                out.append({7: r"\a", 8: r"\b", 12: r"\f", 10: r"\n", 13: r"\r", 9: r"\t",
                            11: r"\v"}.get(c, f"\\x{c:02x}"))
            i += 1
            continue
        # multi-byte UTF-8 sequence
        ln = 2 if c >> 5 == 0b110 else 3 if c >> 4 == 0b1110 else 4 if c >> 3 == 0b11110 else 0
        seg = b[i:i + ln] if ln else b""
        try:
            ch = seg.decode("utf-8") if ln and len(seg) == ln else None
        except UnicodeDecodeError:
            ch = None
        if ch is None:
            out.append(f"\\x{c:02x}")
            i += 1
            continue
        if ch.isprintable():
            out.append(ch)
        else:
            cp = ord(ch)
            out.append(f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}")
        i += ln
    out.append('"')
    return "".join(out)


def hex_bytes(b: bytes) -> str:
    """etcdctl's --hex rendering: every byte as \\xNN."""
    return "".join(f"\\x{c:02x}" for c in b)


def printf_noargs(data: bytes) -> bytes:
    """What Go's fmt.Printf(s) prints when s carries no arguments (etcdctl's protobuf printer does this)."""
    if b"%" not in data:
        return data
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        if c != 0x25:
            out.append(c)
            i += 1
            continue
        i += 1
        while i < n and data[i] in b"#0+- ":
            i += 1
        while i < n and (0x30 <= data[i] <= 0x39 or data[i] == 0x2A):
            i += 1
        if i < n and data[i] == 0x2E:
            i += 1
            while i < n and (0x30 <= data[i] <= 0x39 or data[i] == 0x2A):
                i += 1
        if i >= n:
            out += b"%!(NOVERB)"
            break
        ln = 1
        c = data[i]
        if c >= 0xC0:
            ln = 2 if c < 0xE0 else 3 if c < 0xF0 else 4
            try:
                verb = data[i:i + ln].decode("utf-8").encode("utf-8")
            except UnicodeDecodeError:
                ln, verb = 1, "\ufffd".encode()
        else:
            verb = bytes([c]) if c < 0x80 else "\ufffd".encode()
        i += ln
        if verb == b"%":
            out += b"%"
        else:
            out += b"%!" + verb + b"(MISSING)"
    return bytes(out)


def humanize_bytes(n: int) -> str:
    """go-humanize Bytes(): SI units."""
    import math
    sizes = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
    if n < 10:
        return f"{n} B"
    e = math.floor(math.log(n) / math.log(1000))
    val = math.floor(n / (1000 ** e) * 10 + 0.5) / 10
    fmt = "{:.0f} {}" if val >= 10 else "{:.1f} {}"
    return fmt.format(val, sizes[e])


def b64(b: bytes) -> str:
    import base64
    return base64.b64encode(b).decode()


# --- text/tabwriter (minwidth 0, tabwidth 8, padding 1, padchar '\t') -----------------------

def tabwrite(text: str, tabwidth: int = 8, padding: int = 1) -> str:
    lines = [ln.split("\t") for ln in text.split("\n")]
    out: list[str] = []
    widths: list[int] = []

    def write_lines(l0, l1):
        for i in range(l0, l1):
            cells = lines[i]
            parts = []
            for j, c in enumerate(cells):
                parts.append(c)
                if j < len(widths) and j < len(cells) - 1:
                    cw = (widths[j] + tabwidth - 1) // tabwidth * tabwidth
                    parts.append("\t" * ((cw - len(c) + tabwidth - 1) // tabwidth))
            out.append("".join(parts))

    def fmt(l0, l1):
        column = len(widths)
        this = l0
        while this < l1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(l0, this)
            l0 = this
            width = 0
            while this < l1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(l0, this)
            widths.pop()
            l0 = this
        write_lines(l0, l1)

    fmt(0, len(lines))
    return "\n".join(out)


# --- olekukonko/tablewriter (as etcdctl configures it: right-aligned cells) -----------------

_TABLE_MAX_WIDTH = 30      # tablewriter's MAX_ROW_WIDTH: wider cells are wrapped at spaces
_WRAP_PENALTY = 100000     # tablewriter's defaultPenalty


def _wrap_words(words: list[str], lim: int) -> list[list[str]]:
    """tablewriter's WrapWords: minimum raggedness (sum of squared slack, a penalty for lines
    over the limit), words joined by one space."""
    n = len(words)
    length = [[0] * n for _ in range(n)]
    for i in range(n):
        length[i][i] = len(words[i])
        for j in range(i + 1, n):
            length[i][j] = length[i][j - 1] + 1 + len(words[j])
    nbrk, cost = [0] * n, [2 ** 31 - 1] * n
    for i in range(n - 1, -1, -1):
        if length[i][n - 1] <= lim:
            cost[i], nbrk[i] = 0, n
            continue
        for j in range(i + 1, n):
            d = lim - length[i][j - 1]
            c = d * d + cost[j] + (_WRAP_PENALTY if length[i][j - 1] > lim else 0)
            if c < cost[i]:
                cost[i], nbrk[i] = c, j
    lines, i = [], 0
    while i < n:
        lines.append(words[i:nbrk[i]])
        i = nbrk[i]
    return lines


def _cell_lines(s: str) -> tuple[list[str], int]:
    """tablewriter's parseDimension with auto-wrap on: the lines of a cell and its width. A
    line wider than 30 is wrapped at spaces (a word wider than the limit raises the limit);
    the width is then at least 30, however narrow the wrapped lines."""
    raw = s.split("\n")
    width = min(max(len(x) for x in raw), _TABLE_MAX_WIDTH)
    out, new_width = [], width
    for i, para in enumerate(raw):
        words = para.split(" ")
        lim = max([width] + [len(w) for w in words])
        if i > 0:
            out.append(" ")
        for line in _wrap_words(words, lim):
            out.append(" ".join(line))
            new_width = max(new_width, len(out[-1]))
    return out, new_width


def render_table(header: list[str], rows: list[list[str]]) -> str:
    hdr = [h.upper() for h in header]
    widths = [len(h) for h in hdr]
    cells = []
    for r in rows:
        cells.append([])
        for i, c in enumerate(r):
            lines_, w = _cell_lines(c)
            cells[-1].append(lines_)
            widths[i] = max(widths[i], w)
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def center(s, w):
        gap = w - len(s)
        left = gap // 2
        return " " * left + s + " " * (gap - left)

    lines = [sep, "|" + "|".join(" " + center(h, w) + " " for h, w in zip(hdr, widths)) + "|", sep]
    for r in cells:
        for k in range(max(len(c) for c in r)):
            lines.append("|" + "|".join(" " + (c[k] if k < len(c) else "").rjust(w) + " "
                                        for c, w in zip(r, widths)) + "|")
    lines.append(sep)
    return "\n".join(lines) + "\n"
