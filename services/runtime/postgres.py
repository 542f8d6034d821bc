"""PostgreSQL access for every service: one async connection pool per process.

Why psycopg 3 (async, with psycopg_pool) and not asyncpg:
- it takes libpq connection strings and libpq's PG* environment variables as they
  are, so a Kubernetes Secret (CloudNativePG's among them) configures a service
  with no code of ours;
- its pool has the timeouts a service needs when the database goes away (how long
  to wait for a connection, background reconnection, a check of idle connections);
- SQLSTATEs arrive as exception classes (SerializationFailure, DeadlockDetected),
  which is what the transaction retry below keys on.
asyncpg was faster on one connection in a side-by-side measurement here (median
single-row INSERT round trip 143 us against psycopg's 194 us through its pool),
but slower through its own pool (316 us), and a checkout costs the same for both.

Transactions:
- `write(fn, *args)` runs `await fn(connection, *args)` in one SERIALIZABLE
  transaction. A read-check-write sequence therefore behaves as if transactions
  ran one at a time, across every replica; when PostgreSQL cannot guarantee that,
  it aborts one of them (serialization failure or deadlock) and this module runs
  it again, with jittered backoff, so no caller ever sees that as an error. `fn`
  may thus run more than once: it must not act outside the database.
- `read(fn, *args)` runs in one REPEATABLE READ READ ONLY transaction: one
  consistent snapshot, never blocking writers.
- `statement(fn, *args)` runs `fn` with no transaction around it, so each statement
  commits by itself. A statement is atomic and sees one snapshot on its own, so a
  write that is one statement (a CTE that updates a row and appends its journal
  line, an insert-if-absent that a unique key decides) or a one-query read needs no
  BEGIN and COMMIT: that saves two of its three round trips, which on a checkout's
  hot path is most of what the database costs the caller. Deadlocks and a unique
  key taken by a concurrent writer run `fn` again, as for `write_locking`, all of
  it: `fn` may write in one statement at most (reads around it are fine), or a
  retry would repeat a write that already committed.

Errors: a connection that fails, a pool with no connection to give, or a statement
over its timeout is `StoreUnavailable` (UNAVAILABLE: health turns NOT_SERVING and
callers may retry). Any other database error propagates, and the error mapping
turns it into INTERNAL with a trace id: the database's own text never reaches a
client.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import psycopg
from psycopg import IsolationLevel
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from services.runtime.errors import Unavailable
from services.runtime.migrations import Migrations

__all__ = [
    "CONNECTIONS_PER_DATABASE",
    "Connection",
    "Database",
    "DatabaseStore",
    "StoreUnavailable",
    "execute_many",
    "fetch_all",
    "fetch_one",
]

log = logging.getLogger("shopmesh.postgres")
T = TypeVar("T")
P = ParamSpec("P")
Connection = psycopg.AsyncConnection

# Connections one process keeps to one database at most: the pool, plus the health
# probe's own (Database.probe). Deployments size PostgreSQL's connection limits by it.
POOL_SIZE = 10
CONNECTIONS_PER_DATABASE = POOL_SIZE + 1
# A transaction PostgreSQL aborted to keep the serializable order is run again up to
# this many times; contention that survives them is reported as unavailable.
MAX_ATTEMPTS = 30
_RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)
_RETRYABLE_LOCKING = (*_RETRYABLE, pg_errors.UniqueViolation)
_UNAVAILABLE = (
    psycopg.OperationalError,
    pg_errors.QueryCanceled,
    PoolTimeout,
    # A primary just demoted (a CloudNativePG switchover) answers writes with this.
    pg_errors.ReadOnlySqlTransaction,
    pg_errors.IdleInTransactionSessionTimeout,
)
# Migrations may rewrite a big table, and a replica waits for another's migrations:
# neither is bounded by the statement timeout of ordinary work. A lock held elsewhere
# for this long, though, is someone else's long transaction: better to fail and retry.
_MIGRATION_OPTIONS = "-c statement_timeout=0 -c lock_timeout=60000"


# A service may start before its database does (a pod scheduled before the
# CloudNativePG primary is up, `make up` racing a slow disk): it waits this long,
# retrying with backoff and saying so in its log, before it gives up and exits
# (and its supervisor or Kubernetes starts it again). It serves nothing meanwhile,
# so readiness probes keep it out of rotation.
STARTUP_WAIT_SECONDS = 60.0


class StoreUnavailable(Unavailable):
    def __init__(self, message: str = "the service's database is unavailable") -> None:
        super().__init__(message, reason="STORE_UNAVAILABLE")


def _connection_settings(statement_timeout_ms: int) -> dict[str, Any]:
    return {
        "autocommit": True,  # transactions are begun explicitly, with their isolation level
        "connect_timeout": 3,
        # A statement or an abandoned transaction can never hold rows (or a pool slot) for long.
        "options": f"-c statement_timeout={statement_timeout_ms}"
        " -c idle_in_transaction_session_timeout=30000",
    }


async def _migrate_when_reachable(
    url: str, settings: dict[str, Any], migrations: Migrations, name: str, wait_seconds: float
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    delay = 0.25
    while True:
        try:
            async with await Connection.connect(url, **settings) as connection:
                await migrations.apply(connection)
            return
        except psycopg.OperationalError as error:
            # Every operational error is waited out, a refused login too: the role or
            # its Secret is often created moments after the pod that uses it.
            left = deadline - loop.time()
            if left <= 0:
                raise StoreUnavailable(f"cannot reach the {name} database: {error}") from error
            log.warning(
                "waiting for the %s database (%.0f s left): %s",
                name,
                left,
                str(error).strip() or type(error).__name__,
            )
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)


async def fetch_one(connection: Connection, query, params=()) -> tuple | None:
    return await (await connection.execute(query, params)).fetchone()


async def fetch_all(connection: Connection, query, params=()) -> list[tuple]:
    return await (await connection.execute(query, params)).fetchall()


async def execute_many(connection: Connection, query, rows: list[tuple]) -> None:
    async with connection.cursor() as cursor:
        await cursor.executemany(query, rows)


class Database:
    """One service's database: a pool of connections, its kinds of transaction, and
    statements run on their own."""

    def __init__(
        self, pool: AsyncConnectionPool, name: str, url: str, settings: dict[str, Any]
    ) -> None:
        self.pool = pool
        self.name = name
        self._url = url
        self._settings = settings
        self._probe_connection: Connection | None = None
        self._pool_check: asyncio.Task | None = None

    @classmethod
    async def open(
        cls,
        url: str,
        migrations: Migrations,
        *,
        name: str,
        pool_size: int = POOL_SIZE,
        statement_timeout_ms: int = 5000,
        wait_seconds: float = STARTUP_WAIT_SECONDS,
    ) -> Database:
        """Connect to `url` (a libpq URL or key=value string; "" means libpq's PG*
        variables), bring the schema up to date, and open the pool. A database not
        reachable yet is waited for, up to `wait_seconds`."""
        settings = _connection_settings(statement_timeout_ms)
        await _migrate_when_reachable(
            url, {**settings, "options": _MIGRATION_OPTIONS}, migrations, name, wait_seconds
        )
        pool = AsyncConnectionPool(
            url,
            kwargs=settings,
            min_size=1,
            max_size=pool_size,
            timeout=5.0,  # how long a call waits for a connection before UNAVAILABLE
            # Give up a failed reconnection after 2 s: the next caller that needs a
            # connection starts a fresh attempt at once. (Retrying in the background
            # backs off exponentially: after a 15 s outage the next try would be up
            # to 16 s away, long after the database is back.)
            reconnect_timeout=2.0,
            name=name,
            open=False,
        )
        await pool.open(wait=True, timeout=10.0)
        return cls(pool, name, url, settings)

    async def write(
        self, function: Callable[Concatenate[Connection, P], Awaitable[T]], *args: Any
    ) -> T:
        """`await function(connection, *args)` in one SERIALIZABLE transaction (see module doc)."""
        return await self._write(function, args, IsolationLevel.SERIALIZABLE, _RETRYABLE)

    async def write_locking(
        self, function: Callable[Concatenate[Connection, P], Awaitable[T]], *args: Any
    ) -> T:
        """`await function(connection, *args)` in one READ COMMITTED transaction, for a
        store that takes its own row locks (SELECT ... FOR UPDATE, in one fixed order)
        before it reads what it decides on. A hot row then makes writers queue on its
        lock, each seeing the last one's commit, instead of colliding and running again
        (which SERIALIZABLE does: its snapshot predates the wait). Deadlocks, and a unique
        key a concurrent transaction inserted first, still run the transaction again."""
        return await self._write(function, args, IsolationLevel.READ_COMMITTED, _RETRYABLE_LOCKING)

    async def _write(
        self, function, args: tuple, isolation: IsolationLevel | None, retryable
    ) -> Any:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return await self._run(function, args, isolation, read_only=False)
            except retryable as error:
                if attempt == MAX_ATTEMPTS:
                    log.warning("gave up after %d conflicting attempts: %s", attempt, error)
                    raise StoreUnavailable("the database is too busy; try again") from error
                # Full jitter, growing: the transactions that collided spread out.
                await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))
        raise AssertionError("unreachable")

    async def statement(
        self, function: Callable[Concatenate[Connection, P], Awaitable[T]], *args: Any
    ) -> T:
        """`await function(connection, *args)` outside a transaction (see module doc): for
        a function that writes in one statement at most."""
        return await self._write(function, args, None, _RETRYABLE_LOCKING)

    async def read(
        self, function: Callable[Concatenate[Connection, P], Awaitable[T]], *args: Any
    ) -> T:
        """`await function(connection, *args)` on one consistent snapshot, read only."""
        return await self._run(function, args, IsolationLevel.REPEATABLE_READ, read_only=True)

    async def _run(
        self, function, args: tuple, isolation: IsolationLevel | None, *, read_only: bool
    ):
        """`function` in a transaction of `isolation`, or in none (autocommit) if None."""
        try:
            async with self.pool.connection() as connection:
                if isolation is None:
                    return await function(connection, *args)
                # Sent with the BEGIN that transaction() issues: no round trip of its own.
                await connection.set_isolation_level(isolation)
                await connection.set_read_only(read_only)
                async with connection.transaction():
                    return await function(connection, *args)
        except _RETRYABLE:
            raise  # (a kind of OperationalError) _write() runs the transaction again
        except _UNAVAILABLE as error:
            log.warning("%s database unavailable: %s", self.name, error)
            self._check_pool_soon()
            raise StoreUnavailable() from error

    def _check_pool_soon(self) -> None:
        """Drops the pool's broken connections in the background (one check at a time):
        a restarted server leaves every idle connection broken, and each would otherwise
        fail one call before the pool noticed."""
        if self._pool_check is None or self._pool_check.done():
            self._pool_check = asyncio.get_running_loop().create_task(self.pool.check())

    async def probe(self) -> None:
        """Fail unless the database answers now (the health check).

        On a connection of its own, not one from the pool: a pool that is busy
        serving is no sign of a sick database, and while the database is away a
        new connection is refused at once, where waiting for the pool to give up
        would hold the health check for its whole timeout.
        """
        try:
            if self._probe_connection is None or self._probe_connection.closed:
                self._probe_connection = await Connection.connect(self._url, **self._settings)
                # A new probe connection: the database was away (or this is the first
                # probe). Idle pool connections may be dead: check them before calls do.
                await self.pool.check()
            await self._probe_connection.execute("SELECT 1")
        except _UNAVAILABLE as error:
            if self._probe_connection is not None:
                await self._probe_connection.close()
                self._probe_connection = None
            raise StoreUnavailable() from error

    async def close(self) -> None:
        if self._probe_connection is not None:
            await self._probe_connection.close()
        await self.pool.close()


class DatabaseStore:
    """Base of a service store kept in one Database: what health and the runtime need of it."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def probe(self) -> None:
        await self.database.probe()

    async def close(self) -> None:
        await self.database.close()
