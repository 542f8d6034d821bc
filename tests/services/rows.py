"""Reading a service's database behind its back, as the superuser (tests check the system
of record, not only what the service answers)."""

from __future__ import annotations

import psycopg
from psycopg import sql

__all__ = ["query", "snapshot", "snapshot_of"]


def query(url: str, statement: str, params: tuple = ()) -> list[tuple]:
    """The rows `statement` returns ([] for one that returns none, e.g. an UPDATE)."""
    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(statement, params)
        return cursor.fetchall() if cursor.description is not None else []


def snapshot(url: str, *tables: str) -> dict[str, list[str]]:
    """Every row of each table (as its text form), sorted: equal snapshots, equal contents.
    No tables named: every table of the database."""
    with psycopg.connect(url, autocommit=True) as connection:
        return snapshot_of(connection, *tables)


def snapshot_of(connection: psycopg.Connection, *tables: str) -> dict[str, list[str]]:
    """snapshot() over an open connection (autocommit), for callers that take many."""
    if not tables:
        tables = tuple(
            name
            for (name,) in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        )
    return {
        table: [
            row
            for (row,) in connection.execute(
                sql.SQL("SELECT {}::text FROM {} ORDER BY 1").format(
                    sql.Identifier(table), sql.Identifier(table)
                )
            )
        ]
        for table in tables
    }
