"""The mesh's systems of record, read as the PostgreSQL superuser: orders, stock, payments."""

from __future__ import annotations

import psycopg

from shopmesh.local.mesh import LocalMesh
from shopmesh.local.postgres import SUPERUSER
from tests.services.rows import snapshot_of

__all__ = ["Records"]

# Every database a call can write to (catalog only reads).
WRITTEN = ("order", "inventory", "payment", "payment_gateway")


class Records:
    """Open connections to every written database, for snapshots taken call by call."""

    def __init__(self, mesh: LocalMesh) -> None:
        self._connections = {
            database: psycopg.connect(mesh.postgres.url(SUPERUSER, database), autocommit=True)
            for database in WRITTEN
        }

    def __enter__(self) -> Records:
        return self

    def __exit__(self, *exc_info) -> None:
        for connection in self._connections.values():
            connection.close()

    def snapshot(self) -> dict[str, dict[str, list[str]]]:
        """Every row of every table of every written database, as text."""
        return {database: snapshot_of(c) for database, c in self._connections.items()}

    def containing(self, text: str, snapshot: dict | None = None) -> list[str]:
        """database.table of every row whose text contains `text`."""
        snapshot = snapshot or self.snapshot()
        return [
            f"{database}.{table}"
            for database, tables in snapshot.items()
            for table, rows in tables.items()
            if any(text in row for row in rows)
        ]
