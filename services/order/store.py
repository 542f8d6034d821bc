"""Durable saga state: the order repository and its PostgreSQL implementation.

Handlers and the saga use only `OrderStore`.

Several order processes share one database (every replica). Every saga in
flight has an owner and a lease, timed by the database's clock (so replicas on
machines whose clocks disagree still agree on who holds what): only the owner
writes it, and `claim` takes a saga over only when its lease has expired, in one
conditional UPDATE, so two processes can never both win. Each claim also takes
the saga's next fencing token, and every write by an owner names the token it
claimed with: a process that stalled past its lease while another took over is
refused (`LeaseLost`), even if it still believes it is the owner. Each of these
is one conditional statement, atomic by itself, so the store's writes need no more
than READ COMMITTED (Database.write_locking): SERIALIZABLE would add predicate
locks and false conflicts between unrelated sagas, for nothing. Creating a saga
and saving a step (its row, its journal line, a reconciliation record) are one
statement each, run without BEGIN and COMMIT (Database.statement): a checkout
saves four times, and each save is then one round trip. A process
renews only the leases of the sagas it is running, so a saga it gave up on (an
upstream or the database failed mid-step) is free for recovery once its lease
runs out, whatever else the process keeps doing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from shop.order.v1 import order_pb2

from services.order.model import Saga, Step, action_request_id
from services.runtime.migrations import Migrations
from services.runtime.postgres import Connection, Database, DatabaseStore, fetch_all, fetch_one
from services.runtime.retention import BATCH

__all__ = [
    "MIGRATIONS",
    "HistoryEntry",
    "LeaseLost",
    "OrderStore",
    "PostgresOrderStore",
    "Reconciliation",
    "read_reconciliations",
]

DEFAULT_LEASE_SECONDS = 10.0
MIGRATIONS = Migrations.of_package("services.order")


class LeaseLost(Exception):
    """The saga is no longer ours (our lease expired and another process claimed it)."""


@dataclass(frozen=True)
class Reconciliation:
    """A charge a saga gave up learning the outcome of (see migration 0003)."""

    order_id: str
    charge_request_id: str
    state: str  # open, refunded, nothing_owed
    payment_id: str
    attempts: int
    last_error: str
    opened_at: float  # epoch seconds
    resolved_at: float | None


_RECONCILIATION = (
    "order_id, charge_request_id, state, payment_id, attempts, last_error,"
    " extract(epoch FROM opened_at)::float8, extract(epoch FROM resolved_at)::float8"
)


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a saga's journal: who wrote which step (or final status), when."""

    owner: str
    event: str  # a Step, "CLAIM", "CANCEL", or a final status name
    at: float  # epoch seconds, by the database's clock


class OrderStore(Protocol):
    async def create(self, saga: Saga, owner: str) -> tuple[Saga, bool]:
        """Stores a new saga owned by `owner`, or returns the one with its request_id.

        The bool is True when `saga` was stored, False when an existing saga is returned.
        """

    async def get(self, order_id: str) -> Saga | None: ...

    async def find(self, request_id: str) -> Saga | None:
        """The saga a PlaceOrder with this request_id created, if any."""

    async def list_orders(
        self, customer_id: str, before: tuple[int, str] | None, limit: int
    ) -> list[order_pb2.Order]:
        """A customer's orders, newest first, strictly older than `before`
        ((create time in ns, id) of the last order of the previous page)."""

    async def save(self, saga: Saga, owner: str) -> None:
        """Writes the saga and renews the lease; raises LeaseLost unless `owner` still
        holds it with the saga's fencing token."""

    async def claim(self, order_id: str, owner: str) -> Saga | None:
        """Takes over a saga in flight whose lease has expired; None if not claimable."""

    async def begin_cancel(self, order_id: str, owner: str, reason: str) -> Saga | None:
        """Starts cancelling an idle CONFIRMED order; None if it is not one."""

    async def claimable(self, limit: int, skip: Collection[Step] = ()) -> list[str]:
        """Ids of sagas in flight whose lease has expired, oldest first, except those
        whose next step is in `skip`."""

    async def renew(self, owner: str, sagas: Collection[Saga]) -> int:
        """Extends the leases of these sagas, which `owner` is running; returns how many
        it still held (with their fencing tokens)."""

    async def release(self, saga: Saga, owner: str) -> None:
        """Gives up the lease on a saga so that recovery can resume it at once."""

    async def history(self, order_id: str) -> list[HistoryEntry]: ...

    async def open_reconciliations(self, limit: int = 100) -> list[Reconciliation]:
        """Charges still to be accounted for, the least attempted first (then the oldest),
        so records that keep failing never starve the ones behind them."""

    async def count_open_reconciliations(self) -> int: ...

    async def resolve_reconciliation(self, order_id: str, state: str, payment_id: str) -> None:
        """Closes a reconciliation: "refunded" or "nothing_owed"."""

    async def note_reconciliation_attempt(self, order_id: str, error: str) -> None: ...

    async def prune_history(self, older_than_seconds: float) -> int:
        """Forgets old journal lines of final orders; how many."""

    async def probe(self) -> None:
        """Returns when the database is usable; raises when it is not (health)."""

    async def close(self) -> None: ...


_COLUMNS = (
    "id, customer_id, request_id, fingerprint, status, step, create_time, order_pb,"
    " request_pb, failure_reason, failure_message, cancel_reason, refund_due, owner,"
    " extract(epoch FROM lease_expires)::float8, lease_token"
)
_LEASE_UNTIL = "clock_timestamp() + make_interval(secs => %s)"


class PostgresOrderStore(DatabaseStore):
    """OrderStore on PostgreSQL, shared by every order replica."""

    def __init__(self, database: Database, *, lease_seconds: float = DEFAULT_LEASE_SECONDS):
        super().__init__(database)
        self.lease_seconds = lease_seconds

    @classmethod
    async def open(
        cls, url: str, *, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> PostgresOrderStore:
        database = await Database.open(url, MIGRATIONS, name="order")
        return cls(database, lease_seconds=lease_seconds)

    @staticmethod
    async def _log(db: Connection, order_id: str, owner: str, event: str) -> None:
        await db.execute(
            "INSERT INTO saga_history (order_id, owner, event) VALUES (%s, %s, %s)",
            (order_id, owner, event),
        )

    async def create(self, saga: Saga, owner: str) -> tuple[Saga, bool]:
        stored = await self.database.statement(self._create, saga, owner)
        if stored is not None:
            return stored, True
        # Its request_id was taken: by an earlier attempt of this checkout, or a
        # concurrent one that inserted first. Either way the stored saga is the answer.
        existing = await self.find(saga.request.request_id)
        if existing is None:  # orders are never deleted: this cannot happen
            raise RuntimeError(f"the order of request {saga.request.request_id} vanished")
        return existing, False

    async def _create(self, db: Connection, saga: Saga, owner: str) -> Saga | None:
        """Inserts the saga with its first journal line, in one statement; None (and
        nothing written) if an order with its request_id exists."""
        # A saga final at creation (failed pricing) needs no runner, so no owner or lease.
        in_flight = saga.step is not None
        row = await fetch_one(
            db,
            "WITH created AS (INSERT INTO orders (id, customer_id, request_id, fingerprint,"
            " status, step, create_time, order_pb, request_pb, failure_reason,"
            " failure_message, cancel_reason, refund_due, owner, lease_expires, lease_token)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            f" CASE WHEN %s THEN {_LEASE_UNTIL} END, 1)"
            " ON CONFLICT (request_id) DO NOTHING"
            " RETURNING id, extract(epoch FROM lease_expires)::float8 AS lease, lease_token),"
            " logged AS (INSERT INTO saga_history (order_id, owner, event)"
            " SELECT id, %s, %s FROM created)"
            " SELECT lease, lease_token FROM created",
            (
                saga.id,
                saga.order.customer_id,
                saga.request.request_id,
                saga.fingerprint,
                *_mutable(saga),
                owner if in_flight else None,
                in_flight,
                self.lease_seconds,
                owner,
                _event(saga),
            ),
        )
        if row is None:
            return None
        saga.owner, saga.lease_expires, saga.lease_token = (owner if in_flight else None), *row
        return saga

    async def get(self, order_id: str) -> Saga | None:
        return await self.database.statement(_get, order_id)

    async def find(self, request_id: str) -> Saga | None:
        return await self.database.statement(_find, request_id)

    async def list_orders(
        self, customer_id: str, before: tuple[int, str] | None, limit: int
    ) -> list[order_pb2.Order]:
        return await self.database.statement(_list_orders, customer_id, before, limit)

    async def save(self, saga: Saga, owner: str) -> None:
        saga.lease_expires = await self.database.statement(self._save, saga, owner)
        saga.owner = owner if saga.step is not None else None

    async def _save(self, db: Connection, saga: Saga, owner: str) -> float | None:
        """One statement: the saga's row (only with its owner's fencing token), its
        journal line, and the reconciliation record of a saga that gave up learning
        its charge's outcome. Raises LeaseLost, nothing written, if not the owner."""
        in_flight = saga.step is not None
        row = await fetch_one(
            db,
            "WITH saved AS (UPDATE orders SET status = %s, step = %s, create_time = %s,"
            " order_pb = %s, request_pb = %s, failure_reason = %s, failure_message = %s,"
            " cancel_reason = %s, refund_due = %s, owner = CASE WHEN %s THEN owner END,"
            f" lease_expires = CASE WHEN %s THEN {_LEASE_UNTIL} END"
            " WHERE id = %s AND owner = %s AND lease_token = %s"
            " RETURNING id, extract(epoch FROM lease_expires)::float8 AS lease),"
            " logged AS (INSERT INTO saga_history (order_id, owner, event)"
            " SELECT id, %s, %s FROM saved),"
            " reconciled AS (INSERT INTO reconciliations (order_id, charge_request_id)"
            " SELECT id, %s FROM saved WHERE %s ON CONFLICT (order_id) DO NOTHING)"
            " SELECT lease FROM saved",
            (
                *_mutable(saga),
                in_flight,
                in_flight,
                self.lease_seconds,
                saga.id,
                owner,
                saga.lease_token,
                owner,
                _event(saga),
                action_request_id(saga.id, "charge"),
                saga.reconcile_charge,
            ),
        )
        if row is None:
            raise LeaseLost(f"order {saga.id} is not owned by {owner} (token {saga.lease_token})")
        return row[0]

    async def claim(self, order_id: str, owner: str) -> Saga | None:
        return await self.database.write_locking(self._claim, order_id, owner)

    async def _claim(self, db: Connection, order_id: str, owner: str) -> Saga | None:
        claimed = await fetch_one(
            db,
            f"UPDATE orders SET owner = %s, lease_expires = {_LEASE_UNTIL},"
            " lease_token = lease_token + 1 WHERE id = %s"
            " AND step IS NOT NULL AND (owner IS NULL OR lease_expires <= clock_timestamp())"
            " RETURNING id",
            (owner, self.lease_seconds, order_id),
        )
        if claimed is None:
            return None
        await self._log(db, order_id, owner, "CLAIM")
        saga = await _get(db, order_id)
        saga.resumed = True
        return saga

    async def begin_cancel(self, order_id: str, owner: str, reason: str) -> Saga | None:
        return await self.database.write_locking(self._begin_cancel, order_id, owner, reason)

    async def _begin_cancel(
        self, db: Connection, order_id: str, owner: str, reason: str
    ) -> Saga | None:
        started = await fetch_one(
            db,
            "UPDATE orders SET step = %s, cancel_reason = %s, owner = %s,"
            f" lease_expires = {_LEASE_UNTIL}, lease_token = lease_token + 1"
            " WHERE id = %s AND step IS NULL AND status = %s RETURNING id",
            (
                Step.RELEASE.value,
                reason,
                owner,
                self.lease_seconds,
                order_id,
                order_pb2.ORDER_STATUS_CONFIRMED,
            ),
        )
        if started is None:
            return None
        await self._log(db, order_id, owner, "CANCEL")
        return await _get(db, order_id)

    async def claimable(self, limit: int, skip: Collection[Step] = ()) -> list[str]:
        skipped = sorted(str(step) for step in skip)
        rows = await self.database.read(
            fetch_all,
            "SELECT id FROM orders WHERE step IS NOT NULL"
            " AND (owner IS NULL OR lease_expires <= clock_timestamp())"
            " AND NOT (step = ANY(%s)) ORDER BY create_time LIMIT %s",
            (skipped, limit),
        )
        return [row[0] for row in rows]

    async def renew(self, owner: str, sagas: Collection[Saga]) -> int:
        if not sagas:
            return 0
        return await self.database.write_locking(self._renew, owner, list(sagas))

    async def _renew(self, db: Connection, owner: str, sagas: list[Saga]) -> int:
        cursor = await db.execute(
            f"UPDATE orders SET lease_expires = {_LEASE_UNTIL}"
            " FROM unnest(%s::text[], %s::bigint[]) AS held (id, token)"
            " WHERE orders.id = held.id AND orders.lease_token = held.token"
            " AND orders.owner = %s AND orders.step IS NOT NULL",
            (self.lease_seconds, [s.id for s in sagas], [s.lease_token for s in sagas], owner),
        )
        return cursor.rowcount

    async def release(self, saga: Saga, owner: str) -> None:
        await self.database.write_locking(
            _execute,
            "UPDATE orders SET owner = NULL, lease_expires = NULL"
            " WHERE id = %s AND owner = %s AND lease_token = %s",
            (saga.id, owner, saga.lease_token),
        )

    async def open_reconciliations(self, limit: int = 100) -> list[Reconciliation]:
        return await self.database.read(read_reconciliations, False, limit)

    async def count_open_reconciliations(self) -> int:
        row = await self.database.read(
            fetch_one, "SELECT count(*) FROM reconciliations WHERE state = 'open'"
        )
        return row[0]

    async def resolve_reconciliation(self, order_id: str, state: str, payment_id: str) -> None:
        await self.database.write_locking(
            _execute,
            "UPDATE reconciliations SET state = %s, payment_id = %s,"
            " resolved_at = clock_timestamp(), attempts = attempts + 1"
            " WHERE order_id = %s AND state = 'open'",
            (state, payment_id, order_id),
        )

    async def note_reconciliation_attempt(self, order_id: str, error: str) -> None:
        await self.database.write_locking(
            _execute,
            "UPDATE reconciliations SET attempts = attempts + 1, last_error = %s"
            " WHERE order_id = %s AND state = 'open'",
            (error[:500], order_id),
        )

    async def prune_history(self, older_than_seconds: float) -> int:
        """Deletes up to BATCH journal lines of final orders older than given; how many.
        The journal of a saga in flight is kept whatever its age."""
        return await self.database.write_locking(
            _rowcount,
            "DELETE FROM saga_history WHERE seq IN (SELECT h.seq FROM saga_history h"
            " JOIN orders o ON o.id = h.order_id WHERE o.step IS NULL"
            " AND h.at < clock_timestamp() - make_interval(secs => %s) ORDER BY h.at LIMIT %s)",
            (older_than_seconds, BATCH),
        )

    async def history(self, order_id: str) -> list[HistoryEntry]:
        rows = await self.database.read(
            fetch_all,
            "SELECT owner, event, extract(epoch FROM at)::float8 FROM saga_history"
            " WHERE order_id = %s ORDER BY seq",
            (order_id,),
        )
        return [HistoryEntry(*row) for row in rows]


async def read_reconciliations(
    db: Connection, include_resolved: bool = False, limit: int = 1000
) -> list[Reconciliation]:
    """The reconciliation records: all of them, oldest first, or the open ones, the
    least attempted first."""
    where = "" if include_resolved else " WHERE state = 'open'"
    order = "opened_at" if include_resolved else "attempts, opened_at"
    rows = await fetch_all(
        db,
        f"SELECT {_RECONCILIATION} FROM reconciliations{where} ORDER BY {order} LIMIT %s",
        (limit,),
    )
    return [Reconciliation(*row) for row in rows]


async def _execute(db: Connection, query: str, params: tuple) -> None:
    await db.execute(query, params)


async def _rowcount(db: Connection, query: str, params: tuple) -> int:
    return (await db.execute(query, params)).rowcount


async def _get(db: Connection, order_id: str) -> Saga | None:
    row = await fetch_one(db, f"SELECT {_COLUMNS} FROM orders WHERE id = %s", (order_id,))
    return _saga(row) if row else None


async def _find(db: Connection, request_id: str) -> Saga | None:
    row = await fetch_one(db, f"SELECT {_COLUMNS} FROM orders WHERE request_id = %s", (request_id,))
    return _saga(row) if row else None


async def _list_orders(
    db: Connection, customer_id: str, before: tuple[int, str] | None, limit: int
) -> list[order_pb2.Order]:
    query = "SELECT order_pb FROM orders WHERE customer_id = %s"
    args: list = [customer_id]
    if before is not None:
        query += " AND (create_time, id) < (%s, %s)"
        args += list(before)
    query += " ORDER BY create_time DESC, id DESC LIMIT %s"
    rows = await fetch_all(db, query, [*args, limit])
    return [order_pb2.Order.FromString(row[0]) for row in rows]


def _mutable(saga: Saga) -> tuple:
    """The columns a save rewrites, in _COLUMNS order from `status` to `refund_due`."""
    return (
        saga.order.status,
        saga.step.value if saga.step else None,
        saga.order.create_time.ToNanoseconds(),
        saga.order.SerializeToString(),
        saga.request.SerializeToString(),
        saga.failure_reason,
        saga.failure_message,
        saga.cancel_reason,
        saga.refund_due,
    )


def _event(saga: Saga) -> str:
    return saga.step.value if saga.step else order_pb2.OrderStatus.Name(saga.order.status)


def _saga(row: tuple) -> Saga:
    """A Saga from a row of _COLUMNS."""
    step, order_pb, request_pb = row[5], row[7], row[8]
    return Saga(
        order=order_pb2.Order.FromString(order_pb),
        request=order_pb2.PlaceOrderRequest.FromString(request_pb),
        fingerprint=row[3],
        step=Step(step) if step else None,
        failure_reason=row[9],
        failure_message=row[10],
        cancel_reason=row[11],
        refund_due=row[12],
        owner=row[13],
        lease_expires=row[14],
        lease_token=row[15],
    )
