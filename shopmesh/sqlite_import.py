"""Moving a database of the SQLite releases into PostgreSQL, once, when upgrading.

Until PostgreSQL, each service kept its data in one SQLite file (the payment
gateway's ledger in a second one). Every service's first PostgreSQL migration
(`0001_*.sql`) is that SQLite schema table for table, so an import is:

1. bring the empty PostgreSQL database to version 1, the SQLite schema;
2. copy every table in one transaction (all of it or, on any error, nothing),
   converting what SQLite stored differently: 0/1 as booleans, epoch seconds as
   timestamps, JSON text as jsonb; a sequence column (saga_history.seq) is
   numbered anew, in the old order;
3. apply the later migrations, whose data changes then reach the imported rows
   exactly as they reached the rows of a database that was upgraded in place.

Sagas that were in flight when the old release stopped keep their step and an
expired lease, so the order service's recovery resumes them when it starts.
Only an empty database is imported into (no schema, or version 1 with empty
tables): an import never merges into data a service already wrote.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import sqlite3
from collections.abc import Callable

import psycopg
from psycopg.types.json import Jsonb

from services.catalog.store import MIGRATIONS as CATALOG
from services.inventory.store import MIGRATIONS as INVENTORY
from services.order.store import MIGRATIONS as ORDER
from services.payment.gateway import MIGRATIONS as PAYMENT_GATEWAY
from services.payment.store import MIGRATIONS as PAYMENT
from services.runtime.migrations import Migrations

__all__ = ["DATABASES", "ImportRefused", "import_sqlite"]

SQLITE_SCHEMA_VERSION = 1


class ImportRefused(Exception):
    """The source or the target is not what an import needs; nothing was written."""


# Database -> (its migrations, its tables in the order their foreign keys need).
DATABASES: dict[str, tuple[Migrations, tuple[str, ...]]] = {
    "catalog": (CATALOG, ("categories", "products")),
    "inventory": (INVENTORY, ("stock", "reservations", "reservation_items", "requests")),
    "order": (ORDER, ("orders", "saga_history")),
    "payment": (PAYMENT, ("payments", "refunds")),
    "payment_gateway": (PAYMENT_GATEWAY, ("gateway_operations",)),
}
# Columns PostgreSQL numbers itself: imported rows are numbered anew, in the old order.
NUMBERED = {"saga_history": "seq"}


def _converter(pg_type: str) -> Callable[[object], object]:
    if pg_type == "boolean":
        return lambda value: None if value is None else bool(value)
    if pg_type == "timestamp with time zone":
        return lambda value: (
            datetime.datetime.fromtimestamp(value, datetime.UTC)
            if isinstance(value, int | float)
            else value
        )
    if pg_type == "jsonb":
        return lambda value: Jsonb(json.loads(value)) if isinstance(value, str) else value
    return lambda value: value


def _read_sqlite(path: pathlib.Path, tables: tuple[str, ...]) -> dict[str, tuple[list, list]]:
    """table -> (column names, rows), read from a file opened read only."""
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file")
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        found = {row[0] for row in source.execute("SELECT name FROM sqlite_master")}
        if missing := [table for table in tables if table not in found]:
            raise ImportRefused(f"{path}: not this database's file (no table {', '.join(missing)})")
        data = {}
        for table in tables:
            cursor = source.execute(
                f"SELECT * FROM {table} ORDER BY {NUMBERED.get(table, 'rowid')}"
            )
            data[table] = ([column[0] for column in cursor.description], cursor.fetchall())
        return data
    except sqlite3.DatabaseError as error:
        raise ImportRefused(f"{path}: not a readable SQLite database ({error})") from error
    finally:
        source.close()


async def _schema_version(db: psycopg.AsyncConnection) -> int:
    exists = await (await db.execute("SELECT to_regclass('schema_migrations')")).fetchone()
    if exists[0] is None:
        return 0
    row = await (
        await db.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
    ).fetchone()
    return row[0]


async def _refuse_unless_empty(db: psycopg.AsyncConnection, tables: tuple[str, ...]) -> None:
    version = await _schema_version(db)
    if version > SQLITE_SCHEMA_VERSION:
        raise ImportRefused(
            f"the database is at schema version {version}: a service has already started on "
            "it; import into a new, empty database before any service uses it"
        )
    for table in tables if version else ():
        row = await (await db.execute(f"SELECT EXISTS (SELECT FROM {table})")).fetchone()
        if row[0]:
            raise ImportRefused(f"table {table} already holds rows: an import never merges")


async def _column_types(db: psycopg.AsyncConnection, table: str) -> dict[str, str]:
    rows = await (
        await db.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        )
    ).fetchall()
    return dict(rows)


async def import_sqlite(
    path: pathlib.Path, database: str, url: str, progress: Callable[[str], None] = print
) -> dict[str, int]:
    """Copies the SQLite file of `database` into the PostgreSQL database at `url`;
    the rows copied per table. Raises ImportRefused (nothing written) when the file or
    the target is not fit, psycopg.Error when PostgreSQL fails (the copy rolled back)."""
    if database not in DATABASES:
        raise ImportRefused(f"unknown database {database!r}: one of {', '.join(DATABASES)}")
    migrations, tables = DATABASES[database]
    data = _read_sqlite(path, tables)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
        await _refuse_unless_empty(db, tables)
        await migrations.upto(SQLITE_SCHEMA_VERSION).apply(db)
        copied = {}
        async with db.transaction():
            for table in tables:
                columns, rows = data[table]
                types = await _column_types(db, table)
                if unknown := [c for c in columns if c not in types]:
                    raise ImportRefused(f"{table}: columns {unknown} have no place in PostgreSQL")
                kept = [c for c in columns if c != NUMBERED.get(table)]
                convert = [(columns.index(c), _converter(types[c])) for c in kept]
                values = [tuple(f(row[i]) for i, f in convert) for row in rows]
                async with db.cursor() as cursor:
                    await cursor.executemany(
                        f"INSERT INTO {table} ({', '.join(kept)})"
                        f" VALUES ({', '.join(['%s'] * len(kept))})",
                        values,
                    )
                copied[table] = len(values)
                progress(f"{table}: {len(values)} rows")
        applied = await migrations.apply(db)
        progress(f"migrations applied after the copy: {', '.join(applied) or 'none'}")
    return copied
