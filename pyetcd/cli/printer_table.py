"""`-w table`: ASCII tables (tablewriter, right-aligned) for the list-like commands only."""
from __future__ import annotations

import sys

from pyetcd.cli import printer as P
from pyetcd.cli.goutil import render_table


class TablePrinter(P.Printer):
    fmt = "table"

    def _t(self, hdr_rows):
        sys.stdout.write(render_table(*hdr_rows))

    def member_list(self, r):
        self._t(P.member_list_table(r))

    def endpoint_health(self, hs):
        self._t(P.endpoint_health_table(hs))

    def endpoint_status(self, statuses):
        self._t(P.endpoint_status_table(statuses))

    def endpoint_hashkv(self, hashes):
        self._t(P.endpoint_hashkv_table(hashes))

    def db_status(self, ds):
        self._t(P.db_status_table(ds))
