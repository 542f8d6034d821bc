"""`shopmesh import-sqlite`: a database of the SQLite releases, into PostgreSQL.

    shopmesh import-sqlite order data/order.db --database-url postgresql://order@db/order
    shopmesh import-sqlite payment_gateway data/gateway.db --database-url ...

Run it once per database, before any service of the new release starts on it:
the target must be empty. Everything is copied in one transaction; the tables'
row counts are printed as they are copied. Then the service's later migrations
are applied, as a service would at start. Exit status 0 when imported, 1 when
refused (nothing written), 2 when PostgreSQL failed (the copy rolled back).
See shopmesh/sqlite_import.py for what is converted and why.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib

import psycopg

from shopmesh.sqlite_import import DATABASES, ImportRefused, import_sqlite

__all__ = ["register"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "import-sqlite",
        help="import a database of the SQLite releases into PostgreSQL (upgrades)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("database", choices=sorted(DATABASES), help="which database the file holds")
    parser.add_argument("file", type=pathlib.Path, help="the SQLite file (read only)")
    parser.add_argument(
        "--database-url", required=True, help="the empty PostgreSQL database to import into"
    )
    parser.set_defaults(func=_import)


def _import(args: argparse.Namespace) -> int:
    try:
        copied = asyncio.run(import_sqlite(args.file, args.database, args.database_url))
    except ImportRefused as error:
        print(f"shopmesh import-sqlite: refused, nothing written: {error}")
        return 1
    except psycopg.Error as error:
        print(f"shopmesh import-sqlite: PostgreSQL failed, nothing copied: {error}")
        return 2
    print(f"imported {sum(copied.values())} rows into {args.database}")
    return 0
