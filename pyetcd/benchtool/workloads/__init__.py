"""One module per workload.

Each module defines ``COMMAND`` (the subcommand name), ``HELP``, ``add_arguments(parser)``,
optionally ``validate(args)`` (raise ValueError), ``build(args)`` and ``run(args) ->
report.Stats``. ``build`` is what each worker process calls to make its side of the workload:
an object with ``async drive(plan, channels, barrier) -> dict``. Unary-request workloads
return a :class:`pyetcd.benchtool.runner.UnaryWorkload` (method + request maker) and get
drive() for free; streaming workloads (watch, watch-latency, lease-keepalive) write their own
drive() using ``runner.start_together`` and ``runner.worker_result``. ``run`` is normally
``runner.run(__name__, args, args.total)``; it spreads clients over --procs, merges the
workers' latencies and returns the report. A new module is registered by adding it below.
"""

# Order is the order of the subcommands in --help.
MODULES = [
    "pyetcd.benchtool.workloads.put",
    "pyetcd.benchtool.workloads.range",
    "pyetcd.benchtool.workloads.txn_put",
]
