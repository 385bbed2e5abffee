"""pyetcdctl entry point: cobra-style command lookup, flag parsing, help, and exit codes."""
from __future__ import annotations

import importlib
import os
import sys

from pyetcd.cli.base import CliExit, Context, EXIT_ERROR, EXIT_INTERRUPTED
from pyetcd.cli.commands import ROOT
from pyetcd.cli.flags import FlagError, HelpRequested, parse, strip_flags


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _suggestions(cmd, word: str) -> str:
    sugg = [c.name for c in sorted(cmd.children, key=lambda c: c.name)
            if _levenshtein(word.lower(), c.name.lower()) <= 2 or c.name.lower().startswith(word.lower())]
    if not sugg:
        return ""
    return "\n\nDid you mean this?\n" + "".join(f"\t{s}\n" for s in sugg)


def find(argv: list[str]):
    """cobra's Command.Find: walk subcommand names, skipping flags (and what they consume)."""
    cmd, args = ROOT, list(argv)
    while True:
        words = strip_flags(args, cmd.all_flags)
        if not words:
            break
        nxt = cmd.find(words[0])
        if nxt is None:
            break
        args.remove(words[0])
        cmd = nxt
    if cmd is ROOT:
        words = strip_flags(args, cmd.all_flags)
        if words:
            return cmd, args, f'unknown command "{words[0]}" for "etcdctl"' + _suggestions(cmd, words[0])
    return cmd, args, None


def _print_usage(cmd) -> None:
    from pyetcd.cli.help import usage
    sys.stdout.write(usage(cmd))
    sys.stdout.flush()


def run(argv: list[str]) -> int:
    cmd, args, err = find(argv)
    if err:
        sys.stderr.write(f"Error: {err}\nRun 'etcdctl --help' for usage.\nError: {err}\n")
        return EXIT_ERROR
    try:
        parsed = parse(args, cmd.all_flags)
    except HelpRequested:
        _print_usage(cmd)
        return 0
    except FlagError as e:
        sys.stderr.write(f"Error: {e}\n")
        sys.stderr.flush()
        _print_usage(cmd)
        sys.stderr.write(f"\nError: {e}\n")
        return EXIT_ERROR
    if parsed.get("help"):
        _print_usage(cmd)
        return 0
    if cmd.name == "help" and cmd.parent is ROOT:
        target, rest, herr = find(parsed.args)
        if herr:
            sys.stderr.write("Unknown help topic [" + " ".join(f"`{a}`" for a in parsed.args) + "]\n")
            sys.stderr.flush()
            from pyetcd.cli.help import usage
            # cobra adds the root's -h flag only when the root itself runs: not listed here
            text = usage(ROOT).replace("  -h, --help[=false]\t\t\t\thelp for etcdctl\n", "")
            sys.stdout.write(text)
            return 0
        _print_usage(target)
        return 0
    if not cmd.run:
        _print_usage(cmd)
        return 0
    mod_name, fn_name = cmd.run.split(":")
    ctx = Context(cmd, parsed)
    try:
        mod = importlib.import_module(f"pyetcd.cli.cmd_{mod_name}")
        rc = getattr(mod, fn_name)(ctx)
        sys.stdout.flush()
        return rc or 0
    except CliExit as e:
        sys.stdout.flush()
        if e.message is not None:
            sys.stderr.write(f"Error: {e.message}\n")
        return e.code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
    finally:
        try:
            ctx.close()
        except Exception:  # noqa: BLE001 - closing must not mask the command's own result
            pass


def main(argv: list[str] | None = None) -> None:
    os.environ.pop("ETCDCTL_API", None)
    # quiet grpc C-core's own stderr logging (set before any grpc import; --debug turns it back on)
    if not os.environ.get("GRPC_VERBOSITY"):
        os.environ["GRPC_VERBOSITY"] = "NONE"
    rc = run(sys.argv[1:] if argv is None else argv)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    os._exit(rc) if os.environ.get("PYETCDCTL_FAST_EXIT", "1") == "1" else sys.exit(rc)


if __name__ == "__main__":
    main()
