"""One member of a 3-process PySyncObj cluster, with its own load driver.

PySyncObj is a library: the replicated object lives inside the application process, and a
command is a method call on it. So the "client" here is the member process itself. The runner
(run.py) starts three of these, finds the leader, and asks one member to drive load:

    python bench/pysyncobj/app.py --self 127.0.0.1:P0 --partners 127.0.0.1:P1,127.0.0.1:P2

Control is line-based JSON on stdin/stdout (one request line, one reply line):

    {"op": "status"}                                   -> {"self", "state", "leader", ...}
    {"op": "run", "clients": C, "total": T, "val_size": N, "key_space": K}
                                                       -> {"count", "errors", "secs", "lat": [...]}
    {"op": "quit"}

The load is a closed loop like pyetcd-bench's: C virtual clients, each with one command in
flight. A client submits ``kv.put(key, value)`` with a callback; the callback (run on
PySyncObj's tick thread once the entry is committed by a majority and applied locally) records
the latency and submits that client's next command. The value is N random bytes, made once,
so every command pickles to the same size.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated


class KV(SyncObj):
    """A replicated dict: the PySyncObj analogue of an etcd put (key -> value, plus a counter)."""

    def __init__(self, self_addr: str, partners: list[str], conf: SyncObjConf) -> None:
        super().__init__(self_addr, partners, conf)
        self._data: dict = {}
        self._puts = 0

    @replicated
    def put(self, key, value):
        self._data[key] = value
        self._puts += 1
        return self._puts

    def puts(self) -> int:
        return self._puts


def run_load(kv: KV, clients: int, total: int, val_size: int, key_space: int,
             timeout: float) -> dict:
    value = os.urandom(val_size)
    lats: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    done = threading.Event()
    state = {"issued": 0, "finished": 0}

    def submit() -> bool:
        # Called with ``lock`` held.
        if state["issued"] >= total:
            return False
        i = state["issued"]
        state["issued"] += 1
        t0 = time.perf_counter()

        def cb(result, err):
            t1 = time.perf_counter()
            with lock:
                if err == FAIL_REASON.SUCCESS:
                    lats.append(t1 - t0)
                else:
                    errors[str(err)] = errors.get(str(err), 0) + 1
                state["finished"] += 1
                if state["finished"] >= total:
                    done.set()
                else:
                    submit()

        kv.put(i % key_space, value, callback=cb)
        return True

    start = time.perf_counter()
    cpu0 = time.process_time()
    with lock:
        for _ in range(min(clients, total)):
            submit()
    if total == 0:
        done.set()
    finished = done.wait(timeout)
    secs = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    with lock:
        return {"count": len(lats), "errors": errors, "secs": secs, "lat": list(lats),
                "timed_out": not finished, "process_cpu_secs": cpu}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--self", dest="self_addr", required=True, help="host:port of this member")
    ap.add_argument("--partners", required=True, help="host:port of the others, comma separated")
    ap.add_argument("--timeout", type=float, default=300.0, help="max seconds for one run")
    ap.add_argument("--batch", action="store_true",
                    help="appendEntriesUseBatch=True (the library default: AppendEntries go out "
                         "on the next tick, every 50 ms at most); without it each command is "
                         "sent at once, as PySyncObj's own benchmarks configure it")
    args = ap.parse_args(argv)
    partners = [p for p in args.partners.split(",") if p]
    # Library defaults except appendEntriesUseBatch: no journal file and no dump file (in
    # memory, never fsynced, as PySyncObj is used by default).
    conf = SyncObjConf(appendEntriesUseBatch=args.batch)
    kv = KV(args.self_addr, partners, conf)

    out = sys.stdout
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        op = req.get("op")
        if op == "status":
            st = kv.getStatus()
            reply = {"self": str(st["self"]), "state": st["state"],
                     "leader": str(st["leader"]) if st["leader"] is not None else None,
                     "ready": kv.isReady(), "commit_idx": st["commit_idx"],
                     "last_applied": st["last_applied"], "puts": kv.puts()}
        elif op == "run":
            reply = run_load(kv, int(req["clients"]), int(req["total"]), int(req["val_size"]),
                             int(req.get("key_space", 1)), float(req.get("timeout", args.timeout)))
        elif op == "quit":
            break
        else:
            reply = {"error": f"unknown op {op!r}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    kv.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
