"""Forward-only schema migrations: numbered SQL files applied in order, once each.

Each service keeps them in its package (`services/<name>/migrations/0001_*.sql`,
package data) and the runtime applies what is pending when the service starts,
before it serves. Several replicas may start at once: an advisory lock makes
them take turns, so the second finds the work done. Every file runs in its own
transaction together with its bookkeeping row, so a failing migration leaves
the schema as it was. A file edited after it was applied is refused at start
(its checksum differs), because the databases that ran the old text would never
run the new one.

Why not a migration library: the ones on PyPI either drive a synchronous
connection of their own from a URL (yoyo-migrations), or bring an ORM with them
(alembic, SQLAlchemy). Forward-only raw SQL on the service's own async
connection is this file.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from dataclasses import dataclass

import psycopg

__all__ = ["Migration", "Migrations"]

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any fixed number: it names the lock, which is per database.
_LOCK = 7_263_521


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class Migrations:
    """The ordered migrations of one service."""

    items: tuple[Migration, ...]

    @classmethod
    def of_package(cls, package: str, folder_name: str = "migrations") -> Migrations:
        """The files in `<package>/<folder_name>/`, ordered by their four-digit number."""
        folder = importlib.resources.files(package) / folder_name
        found = []
        for entry in folder.iterdir():
            if not entry.name.endswith(".sql"):
                continue
            match = _NAME.match(entry.name)
            if not match:
                raise ValueError(f"{package}: migration {entry.name!r} is not NNNN_name.sql")
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text()))
        found.sort(key=lambda m: m.version)
        versions = [m.version for m in found]
        if versions != list(range(1, len(found) + 1)):
            raise ValueError(f"{package}: migrations must be numbered 1, 2, ... without gaps")
        return cls(tuple(found))

    def upto(self, version: int) -> Migrations:
        """The first `version` migrations (what an older release of the service had)."""
        return Migrations(tuple(m for m in self.items if m.version <= version))

    async def apply(self, connection: psycopg.AsyncConnection) -> list[str]:
        """Apply what is pending on an autocommit connection; the names applied now."""
        applied_now = []
        await connection.execute("SELECT pg_advisory_lock(%s)", (_LOCK,))
        try:
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"
            )
            cursor = await connection.execute(
                "SELECT version, name, checksum FROM schema_migrations"
            )
            done = {
                version: (name, checksum) for version, name, checksum in await cursor.fetchall()
            }
            for migration in self.items:
                if migration.version in done:
                    name, checksum = done[migration.version]
                    if checksum != migration.checksum:
                        raise RuntimeError(
                            f"migration {name} was edited after it was applied: "
                            "add a new migration instead"
                        )
                    continue
                async with connection.transaction():
                    await connection.execute(migration.sql)
                    await connection.execute(
                        "INSERT INTO schema_migrations (version, name, checksum)"
                        " VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                applied_now.append(migration.name)
        finally:
            await connection.execute("SELECT pg_advisory_unlock(%s)", (_LOCK,))
        return applied_now
