"""One module per workload.

Each module defines ``COMMAND`` (the subcommand name), ``HELP``, ``add_arguments(parser)``
and ``run(args) -> report.Stats``. Unary-request workloads also define ``build(args) ->
runner.UnaryWorkload`` and delegate ``run`` to :func:`pyetcd.benchtool.runner.run`, which is
what worker processes call to rebuild the workload on their side. Streaming workloads
(watch, watch-latency, lease-keepalive) bring their own driver but reuse the report.
"""

# Order is the order of the subcommands in --help.
MODULES = [
    "pyetcd.benchtool.workloads.put",
    "pyetcd.benchtool.workloads.range",
    "pyetcd.benchtool.workloads.txn_put",
]
