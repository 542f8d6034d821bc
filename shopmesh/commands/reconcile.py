"""`shopmesh reconcile`: the charges whose outcome a checkout could not learn, and where
their reconciliation stands.

    shopmesh reconcile                 # the open ones, in the local mesh's order database
    shopmesh reconcile --all           # resolved ones too (refunded, nothing_owed)
    shopmesh reconcile --database-url postgresql://...   # another order database

The order service's reconciler resolves each record on its own (see
services/order/reconciler.py); this shows what is still open, for how long, how
many attempts were made and the last error. Exit status 0 when nothing is open,
1 when something is (so a cron job or an alert can run it), 2 when the database
cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import pathlib

import psycopg

from services.order.store import Reconciliation, read_reconciliations
from shopmesh.load.stats import table
from shopmesh.local.layout import DEFAULT_RUN_DIR, RunDir
from shopmesh.local.postgres import SUPERUSER, LocalPostgres

__all__ = ["register"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "reconcile",
        help="charges still being reconciled after a failed checkout",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--all", action="store_true", help="also the resolved records")
    parser.add_argument(
        "--run-dir",
        type=pathlib.Path,
        default=DEFAULT_RUN_DIR,
        help=f"the local mesh whose order database to read (default {DEFAULT_RUN_DIR})",
    )
    parser.add_argument("--database-url", help="read this order database instead")
    parser.set_defaults(func=_reconcile)


async def _read(url: str, include_resolved: bool) -> list[Reconciliation]:
    options = "-c default_transaction_read_only=on"
    async with await psycopg.AsyncConnection.connect(url, options=options) as connection:
        return await read_reconciliations(connection, include_resolved)


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


def _reconcile(args: argparse.Namespace) -> int:
    url = args.database_url
    if url is None:
        postgres = LocalPostgres(RunDir(args.run_dir.resolve()).postgres)
        if postgres.pid is None:
            print(
                f"shopmesh reconcile: no local mesh database in {args.run_dir}; give --database-url"
            )
            return 2
        postgres.socket_dir = postgres.data_dir
        url = postgres.url(SUPERUSER, "order")
    try:
        records = asyncio.run(_read(url, args.all))
    except psycopg.Error as error:
        print(f"shopmesh reconcile: cannot read the order database: {error}")
        return 2
    rows = [
        [r.order_id, r.state, r.attempts, _when(r.opened_at), _when(r.resolved_at),
         r.payment_id or "-", r.last_error or "-"]
        for r in records
    ]  # fmt: skip
    headers = ["order", "state", "attempts", "opened", "resolved", "payment", "last error"]
    print(table(headers, rows) if rows else "no reconciliation records")
    open_count = sum(r.state == "open" for r in records)
    print(f"{open_count} open")
    return 1 if open_count else 0
