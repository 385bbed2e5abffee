"""A small data-driven test runner (the format of cockroachdb/datadriven, as etcd uses it).

A test file is a sequence of blocks:

    command arg1 key=value key=(1,2,3)
    optional input lines
    ----
    expected output
    <blank line>

Comments (# ...) and blank lines between blocks are skipped. Set PYETCD_RAFT_REWRITE=1 to
rewrite the expected outputs in place with what the code prints (then review the diff!).
"""
import os
import shlex


class Cmd:
    def __init__(self, name, pos, kw, input_lines, line_no):
        self.name = name
        self.pos = pos          # positional args (strings)
        self.kw = kw            # key -> string or list of strings
        self.input = input_lines
        self.line_no = line_no

    def int_list(self, key, default=()):
        v = self.kw.get(key)
        if v is None:
            return list(default)
        if isinstance(v, str):
            v = [v]
        return [int(x) for x in v if x != ""]

    def get(self, key, default=None):
        return self.kw.get(key, default)

    def get_int(self, key, default=0):
        v = self.kw.get(key)
        return default if v is None else int(v)

    def get_bool(self, key, default=False):
        v = self.kw.get(key)
        return default if v is None else v in ("true", "1", "yes")


def _parse_cmd_line(line):
    toks = shlex.split(line)
    name, pos, kw = toks[0], [], {}
    for t in toks[1:]:
        if "=" in t:
            k, v = t.split("=", 1)
            if v.startswith("(") and v.endswith(")"):
                v = [x.strip() for x in v[1:-1].split(",") if x.strip()]
            kw[k] = v
        else:
            pos.append(t)
    return name, pos, kw


def parse(path):
    """Returns [(Cmd, expected_output, (start_line, end_line))] plus the file's lines."""
    with open(path) as f:
        lines = f.read().split("\n")
    blocks = []
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            i += 1
            continue
        start = i
        name, pos, kw = _parse_cmd_line(line)
        i += 1
        inp = []
        while i < n and lines[i] != "----":
            inp.append(lines[i])
            i += 1
        if i >= n:
            raise ValueError("%s:%d: missing ---- after command" % (path, start + 1))
        i += 1
        out_start = i
        while i < n and lines[i] != "":
            i += 1
        expected = "\n".join(lines[out_start:i])
        blocks.append((Cmd(name, pos, kw, inp, start + 1), expected, (out_start, i)))
    return blocks, lines


def run_file(path, handler):
    """Run every block through handler(cmd) -> str. Returns a list of mismatch reports, or
    rewrites the file when PYETCD_RAFT_REWRITE is set."""
    blocks, lines = parse(path)
    rewrite = os.environ.get("PYETCD_RAFT_REWRITE", "") not in ("", "0")
    failures = []
    outputs = []
    for cmd, expected, span in blocks:
        got = handler(cmd).rstrip("\n")
        # A blank line ends a block, so outputs never contain one.
        got = "\n".join(ln if ln.strip() else "." for ln in got.split("\n")) if got else "ok"
        outputs.append((span, got))
        if got != expected and not rewrite:
            failures.append("%s:%d: %s\n--- expected\n%s\n--- got\n%s" % (
                path, cmd.line_no, " ".join([cmd.name] + cmd.pos), expected, got))
            break  # later blocks depend on this one's state; stop at the first mismatch
    if rewrite:
        new = []
        last = 0
        for (s, e), got in outputs:
            new.extend(lines[last:s])
            new.extend(got.split("\n"))
            last = e
        new.extend(lines[last:])
        with open(path, "w") as f:
            f.write("\n".join(new))
    return failures
