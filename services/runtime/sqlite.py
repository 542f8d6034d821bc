"""SQLite (WAL) access that keeps the event loop free and holds across processes.

Each process talks to its file through one connection on one worker thread:
calls queue there instead of blocking the loop, and in-process writers never
race. Across processes (two replicas on one data dir) `write()` runs in a
`BEGIN IMMEDIATE` transaction, which takes SQLite's single write lock before
reading, so a read-check-write sequence cannot interleave with another
process's; `busy_timeout` makes the loser wait for the lock instead of failing.

Fault knob: while a file named `<database file>.fault` exists (e.g.
`touch $SHOPMESH_DATA_DIR/inventory.sqlite3.fault`), every call fails with
StoreUnavailable, so health turns NOT_SERVING and RPCs fail UNAVAILABLE, in
every process using that file. Delete the file to recover.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import pathlib
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from services.runtime.errors import Unavailable

__all__ = ["Database", "DatabaseStore", "StoreUnavailable"]

log = logging.getLogger("shopmesh.sqlite")
T = TypeVar("T")

# OperationalError messages that mean "the store cannot be used now", not a bug.
_UNAVAILABLE_MARKERS = ("locked", "busy", "disk i/o", "unable to open", "readonly", "disk is full")


class StoreUnavailable(Unavailable):
    def __init__(self, message: str = "the service's database is unavailable") -> None:
        super().__init__(message, reason="STORE_UNAVAILABLE")


class Database:
    def __init__(self, path: pathlib.Path, *, synchronous: str = "NORMAL") -> None:
        self.path = pathlib.Path(path)
        self.fault_path = self.path.with_name(self.path.name + ".fault")
        self._synchronous = synchronous
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"sqlite-{self.path.stem}"
        )
        self._connection: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: pathlib.Path, schema: str, *, synchronous: str = "NORMAL"):
        """Open (creating if needed) the file and apply the idempotent `schema` script."""
        database = cls(path, synchronous=synchronous)
        try:
            await database._call(database._connect, schema)
        except BaseException:
            database._executor.shutdown(wait=False)
            raise
        return database

    def _connect(self, schema: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are begun explicitly, so their kind is ours to choose.
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA busy_timeout = 10000")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {self._synchronous}")
        connection.execute("PRAGMA foreign_keys = ON")
        # Replicas may start together: the schema goes in under the write lock.
        connection.execute("BEGIN IMMEDIATE")
        try:
            _run_script(connection, schema)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        self._connection = connection

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, function, args)

    def _guarded(self, function: Callable[..., T], args: tuple) -> T:
        if self.fault_path.exists():
            raise StoreUnavailable("the service's database is switched off by its fault flag")
        try:
            return function(*args)
        except sqlite3.OperationalError as error:
            if any(marker in str(error).lower() for marker in _UNAVAILABLE_MARKERS):
                log.warning("database unavailable: %s", error)
                raise StoreUnavailable() from error
            raise
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.IntegrityError | sqlite3.ProgrammingError):
                raise
            log.error("database unusable: %s", error)
            raise StoreUnavailable() from error

    async def read(self, function: Callable[..., T], *args: Any) -> T:
        """Run `function(connection, *args)` on the database thread, outside a transaction."""
        return await self._call(self._read, function, args)

    def _read(self, function: Callable[..., T], args: tuple) -> T:
        return function(self._require_connection(), *args)

    async def write(self, function: Callable[..., T], *args: Any) -> T:
        """Run `function(connection, *args)` in one BEGIN IMMEDIATE transaction.

        It commits when the function returns and rolls back when it raises, so a
        handler's exception (e.g. FailedPrecondition) leaves the store unchanged.
        """
        return await self._call(self._write, function, args)

    def _write(self, function: Callable[..., T], args: tuple) -> T:
        connection = self._require_connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = function(connection, *args)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result

    async def probe(self) -> None:
        """Fail unless the file can be read now (the health check)."""
        await self._call(self._probe)

    def _probe(self) -> None:
        self._require_connection().execute("SELECT count(*) FROM sqlite_master").fetchone()

    def _require_connection(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StoreUnavailable("the database is closed")
        return self._connection

    async def close(self) -> None:
        if self._connection is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class DatabaseStore:
    """Base of a service store kept in one Database: what health and tests need of it."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @property
    def fault_path(self) -> pathlib.Path:
        """While this file exists the store is unusable (a chaos knob; see Database)."""
        return self.database.fault_path

    async def probe(self) -> None:
        await self.database.probe()

    async def close(self) -> None:
        await self.database.close()


def _run_script(connection: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT the open transaction first, so statements run one by
    # one; complete_statement() knows where one ends (semicolons in comments, triggers).
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            connection.execute(statement)
            statement = ""
    if statement.strip():
        connection.execute(statement)
