"""Run reports: history.json (reloadable with History.from_json), report.txt, report.html.

report.html is a timeline: one row per client, one bar per op from invoke to return (green ok,
grey failed, orange indeterminate: drawn to the end of the run), fault windows shaded red
behind, and ops named in an error outlined in black. Hover a bar for the op's details.
"""
from __future__ import annotations

import html
import json
import os
import re
import time

from .history import History


def _flagged_ops(result) -> set[int]:
    ids = set()
    for errs in result.errors.values():
        for e in errs:
            ids.update(int(x) for x in re.findall(r"\bop (\d+)", e))
    return ids


def write(cfg, history: History, result, logs: dict | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    d = os.path.join(cfg.results_dir, f"{cfg.kind}-{cfg.members}m-seed{cfg.seed}-{stamp}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "history.json"), "w") as f:
        f.write(history.to_json())
    with open(os.path.join(d, "result.json"), "w") as f:
        json.dump({"passed": result.passed, "errors": result.errors, "stats": result.stats,
                   "config": cfg.__dict__}, f, indent=1, default=str)
    flagged = _flagged_ops(result)
    lines = [f"pyetcd robustness run: {'PASS' if result.passed else 'FAIL'}",
             f"config: {cfg.__dict__}", f"stats: {json.dumps(result.stats, default=str)}", ""]
    for checker, errs in result.errors.items():
        lines.append(f"== {checker}: {len(errs)} problem(s)")
        lines += [f"  - {e}" for e in errs]
    lines += ["", "== faults"]
    lines += [f"  {f['at']:8.3f} .. {f['end'] if f['end'] is None else round(f['end'], 3)}  "
              f"{f['name']}: {f['detail']}" for f in history.faults]
    if flagged:
        lines += ["", "== ops named above"]
        lines += [f"  op {o.id} client {o.client} [{o.invoke:.3f}, {o.ret}] {o.describe()} "
                  f"@{o.endpoint}" for o in history.ops if o.id in flagged]
    with open(os.path.join(d, "report.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    for name, tail in (logs or {}).items():
        with open(os.path.join(d, f"{name}.log.tail"), "w") as f:
            f.write(tail)
    with open(os.path.join(d, "report.html"), "w") as f:
        f.write(timeline(history, result, flagged))
    return d


def timeline(history: History, result, flagged: set[int]) -> str:
    ops = history.ops
    end = max([o.ret or 0 for o in ops] + [o.invoke for o in ops] +
              [f["end"] or 0 for f in history.faults] + [1.0])
    clients = sorted({o.client for o in ops})
    row = {c: i for i, c in enumerate(clients)}
    W, RH = 1800, 22
    sx = W / end
    H = RH * (len(clients) + 2)
    parts = [f'<svg width="{W + 80}" height="{H}" xmlns="http://www.w3.org/2000/svg" '
             f'font-family="monospace" font-size="11">']
    for f in history.faults:
        x0, x1 = f["at"] * sx, (f["end"] or end) * sx
        parts.append(f'<rect x="{x0 + 60:.1f}" y="0" width="{max(x1 - x0, 1):.1f}" '
                     f'height="{H}" fill="#f8d0d0"><title>{html.escape(f["name"])}: '
                     f'{html.escape(f["detail"])}</title></rect>')
    for c in clients:
        parts.append(f'<text x="2" y="{row[c] * RH + 15}">client {c}</text>')
    colors = {"ok": "#4caf50", "fail": "#9e9e9e", "unknown": "#ff9800"}
    for o in ops:
        x0 = o.invoke * sx
        x1 = (o.ret if o.ret is not None else end) * sx
        stroke = ' stroke="black" stroke-width="2"' if o.id in flagged else ""
        parts.append(f'<rect x="{x0 + 60:.1f}" y="{row[o.client] * RH + 3}" '
                     f'width="{max(x1 - x0, 1.5):.1f}" height="{RH - 6}" '
                     f'fill="{colors.get(o.status, "#000")}"{stroke}><title>op {o.id} '
                     f'{html.escape(o.describe())} [{o.invoke:.3f}, {o.ret}] @{o.endpoint}'
                     f'</title></rect>')
    parts.append("</svg>")
    errs = "".join(f"<h3>{html.escape(k)}</h3><ul>" +
                   "".join(f"<li><pre>{html.escape(e)}</pre></li>" for e in v) + "</ul>"
                   for k, v in result.errors.items())
    faults = "".join(f"<li>{f['at']:.2f}s {html.escape(f['name'])}: "
                     f"{html.escape(f['detail'])}</li>" for f in history.faults)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>robustness report</title>"
            f"</head><body><h1>{'PASS' if result.passed else 'FAIL'}</h1>"
            f"<pre>{html.escape(json.dumps(history.meta))}\n"
            f"{html.escape(json.dumps(result.stats, default=str))}</pre>{errs}"
            f"<h2>Timeline ({end:.1f}s; red = fault windows; green ok, grey failed, "
            f"orange indeterminate; outlined = named in an error)</h2>"
            f"<div style='overflow-x:scroll'>{''.join(parts)}</div>"
            f"<h2>Faults</h2><ul>{faults}</ul></body></html>")
