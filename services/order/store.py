"""Durable saga state: the order repository and its SQLite (WAL) implementation.

Handlers and the saga use only `OrderStore`, so another database (PostgreSQL on
Kubernetes) can replace SQLite without touching them.

Several order processes may share one database (two replicas on one data dir).
Every saga in flight has an owner and a lease: only the owner writes it, and
`claim` takes a saga over only when its lease has expired, in one conditional
UPDATE inside BEGIN IMMEDIATE, so two processes can never both win. Every write
by an owner is conditional on still being the owner (`LeaseLost` otherwise).
"""

from __future__ import annotations

import pathlib
import sqlite3
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from shop.order.v1 import order_pb2

from services.order.model import Saga, Step
from services.runtime.sqlite import Database, DatabaseStore

__all__ = ["HistoryEntry", "LeaseLost", "OrderStore", "SqliteOrderStore"]

DEFAULT_LEASE_SECONDS = 10.0


class LeaseLost(Exception):
    """The saga is no longer ours (our lease expired and another process claimed it)."""


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a saga's journal: who wrote which step (or final status), when."""

    owner: str
    event: str  # a Step, "CLAIM", or a final status name
    at: float


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
        """Writes the saga and renews the lease; raises LeaseLost unless `owner` holds it."""

    async def claim(self, order_id: str, owner: str) -> Saga | None:
        """Takes over a saga in flight whose lease has expired; None if not claimable."""

    async def begin_cancel(self, order_id: str, owner: str, reason: str) -> Saga | None:
        """Starts cancelling an idle CONFIRMED order; None if it is not one."""

    async def claimable(self, limit: int, skip: Collection[Step] = ()) -> list[str]:
        """Ids of sagas in flight whose lease has expired, oldest first, except those
        whose next step is in `skip`."""

    async def renew(self, owner: str) -> int:
        """Extends every lease `owner` holds; returns how many."""

    async def release(self, order_id: str, owner: str) -> None:
        """Gives up the lease on a saga so that recovery can resume it at once."""

    async def history(self, order_id: str) -> list[HistoryEntry]: ...

    async def probe(self) -> None:
        """Returns when the database is usable; raises when it is not (health)."""

    async def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id              TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    request_id      TEXT NOT NULL UNIQUE,
    fingerprint     TEXT NOT NULL,
    status          INTEGER NOT NULL,       -- shop.order.v1.OrderStatus
    step            TEXT,                   -- services.order.model.Step, NULL when idle
    create_time     INTEGER NOT NULL,       -- ns since the epoch
    order_pb        BLOB NOT NULL,          -- shop.order.v1.Order
    request_pb      BLOB NOT NULL,          -- shop.order.v1.PlaceOrderRequest
    failure_reason  TEXT NOT NULL DEFAULT '',
    failure_message TEXT NOT NULL DEFAULT '',
    cancel_reason   TEXT NOT NULL DEFAULT '',
    refund_due      INTEGER NOT NULL DEFAULT 0,
    owner           TEXT,
    lease_expires   REAL                    -- epoch seconds
);
CREATE INDEX IF NOT EXISTS orders_by_customer ON orders (customer_id, create_time, id);
CREATE INDEX IF NOT EXISTS orders_in_flight ON orders (lease_expires) WHERE step IS NOT NULL;
CREATE TABLE IF NOT EXISTS saga_history (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL,
    owner    TEXT NOT NULL,
    event    TEXT NOT NULL,
    at       REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS saga_history_by_order ON saga_history (order_id, seq);
"""

_COLUMNS = (
    "id, customer_id, request_id, fingerprint, status, step, create_time, order_pb,"
    " request_pb, failure_reason, failure_message, cancel_reason, refund_due, owner, lease_expires"
)


class SqliteOrderStore(DatabaseStore):
    """OrderStore on one SQLite file in WAL mode, safe to share between processes."""

    def __init__(
        self,
        database: Database,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(database)
        self.lease_seconds = lease_seconds
        self._clock = clock

    @classmethod
    async def open(
        cls,
        path: pathlib.Path,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> SqliteOrderStore:
        # FULL: a step recorded before an upstream call must survive a crash right after it.
        database = await Database.open(path, _SCHEMA, synchronous="FULL")
        return cls(database, lease_seconds=lease_seconds, clock=clock)

    def _lease_until(self) -> float:
        return self._clock() + self.lease_seconds

    def _log(self, db: sqlite3.Connection, order_id: str, owner: str, event: str) -> None:
        db.execute(
            "INSERT INTO saga_history (order_id, owner, event, at) VALUES (?, ?, ?, ?)",
            (order_id, owner, event, self._clock()),
        )

    async def create(self, saga: Saga, owner: str) -> tuple[Saga, bool]:
        return await self.database.write(self._create, saga, owner)

    def _create(self, db: sqlite3.Connection, saga: Saga, owner: str) -> tuple[Saga, bool]:
        existing = _find(db, saga.request.request_id)
        if existing is not None:
            return existing, False
        if saga.step is not None:  # a saga final at creation (failed pricing) needs no runner
            saga.owner, saga.lease_expires = owner, self._lease_until()
        db.execute(
            f"INSERT INTO orders ({_COLUMNS}) VALUES ({', '.join('?' * 15)})",
            (
                saga.id,
                saga.order.customer_id,
                saga.request.request_id,
                saga.fingerprint,
                *_mutable(saga),
            ),
        )
        self._log(db, saga.id, owner, _event(saga))
        return saga, True

    async def get(self, order_id: str) -> Saga | None:
        return await self.database.read(_get, order_id)

    async def find(self, request_id: str) -> Saga | None:
        return await self.database.read(_find, request_id)

    async def list_orders(
        self, customer_id: str, before: tuple[int, str] | None, limit: int
    ) -> list[order_pb2.Order]:
        return await self.database.read(_list_orders, customer_id, before, limit)

    async def save(self, saga: Saga, owner: str) -> None:
        in_flight = saga.step is not None
        saga.owner = owner if in_flight else None
        saga.lease_expires = self._lease_until() if in_flight else None
        await self.database.write(self._save, saga, owner)

    def _save(self, db: sqlite3.Connection, saga: Saga, owner: str) -> None:
        cursor = db.execute(
            "UPDATE orders SET status = ?, step = ?, create_time = ?, order_pb = ?,"
            " request_pb = ?, failure_reason = ?, failure_message = ?, cancel_reason = ?,"
            " refund_due = ?, owner = ?, lease_expires = ? WHERE id = ? AND owner = ?",
            (*_mutable(saga), saga.id, owner),
        )
        if cursor.rowcount != 1:
            raise LeaseLost(f"order {saga.id} is not owned by {owner}")
        self._log(db, saga.id, owner, _event(saga))

    async def claim(self, order_id: str, owner: str) -> Saga | None:
        return await self.database.write(self._claim, order_id, owner)

    def _claim(self, db: sqlite3.Connection, order_id: str, owner: str) -> Saga | None:
        cursor = db.execute(
            "UPDATE orders SET owner = ?, lease_expires = ? WHERE id = ?"
            " AND step IS NOT NULL AND (owner IS NULL OR lease_expires <= ?)",
            (owner, self._lease_until(), order_id, self._clock()),
        )
        if cursor.rowcount != 1:
            return None
        self._log(db, order_id, owner, "CLAIM")
        return _get(db, order_id)

    async def begin_cancel(self, order_id: str, owner: str, reason: str) -> Saga | None:
        return await self.database.write(self._begin_cancel, order_id, owner, reason)

    def _begin_cancel(
        self, db: sqlite3.Connection, order_id: str, owner: str, reason: str
    ) -> Saga | None:
        cursor = db.execute(
            "UPDATE orders SET step = ?, cancel_reason = ?, owner = ?, lease_expires = ?"
            " WHERE id = ? AND step IS NULL AND status = ?",
            (
                Step.RELEASE.value,
                reason,
                owner,
                self._lease_until(),
                order_id,
                order_pb2.ORDER_STATUS_CONFIRMED,
            ),
        )
        if cursor.rowcount != 1:
            return None
        self._log(db, order_id, owner, "CANCEL")
        return _get(db, order_id)

    async def claimable(self, limit: int, skip: Collection[Step] = ()) -> list[str]:
        skipped = sorted(str(step) for step in skip)
        not_skipped = f" AND step NOT IN ({', '.join('?' * len(skipped))})" if skipped else ""
        rows = await self.database.read(
            lambda db: db.execute(
                "SELECT id FROM orders WHERE step IS NOT NULL"
                f" AND (owner IS NULL OR lease_expires <= ?){not_skipped}"
                " ORDER BY create_time LIMIT ?",
                (self._clock(), *skipped, limit),
            ).fetchall()
        )
        return [row["id"] for row in rows]

    async def renew(self, owner: str) -> int:
        return await self.database.write(
            lambda db: (
                db.execute(
                    "UPDATE orders SET lease_expires = ? WHERE owner = ? AND step IS NOT NULL",
                    (self._lease_until(), owner),
                ).rowcount
            )
        )

    async def release(self, order_id: str, owner: str) -> None:
        await self.database.write(
            lambda db: db.execute(
                "UPDATE orders SET owner = NULL, lease_expires = NULL WHERE id = ? AND owner = ?",
                (order_id, owner),
            )
        )

    async def history(self, order_id: str) -> list[HistoryEntry]:
        rows = await self.database.read(
            lambda db: db.execute(
                "SELECT owner, event, at FROM saga_history WHERE order_id = ? ORDER BY seq",
                (order_id,),
            ).fetchall()
        )
        return [HistoryEntry(row["owner"], row["event"], row["at"]) for row in rows]


def _get(db: sqlite3.Connection, order_id: str) -> Saga | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM orders WHERE id = ?", (order_id,)).fetchone()
    return _saga(row) if row else None


def _find(db: sqlite3.Connection, request_id: str) -> Saga | None:
    row = db.execute(
        f"SELECT {_COLUMNS} FROM orders WHERE request_id = ?", (request_id,)
    ).fetchone()
    return _saga(row) if row else None


def _list_orders(
    db: sqlite3.Connection, customer_id: str, before: tuple[int, str] | None, limit: int
) -> list[order_pb2.Order]:
    query = "SELECT order_pb FROM orders WHERE customer_id = ?"
    args: list = [customer_id]
    if before is not None:
        query += " AND (create_time, id) < (?, ?)"
        args += list(before)
    query += " ORDER BY create_time DESC, id DESC LIMIT ?"
    rows = db.execute(query, [*args, limit]).fetchall()
    return [order_pb2.Order.FromString(row["order_pb"]) for row in rows]


def _mutable(saga: Saga) -> tuple:
    """The columns a save rewrites, in _COLUMNS order from `status` on."""
    return (
        saga.order.status,
        saga.step.value if saga.step else None,
        saga.order.create_time.ToNanoseconds(),
        saga.order.SerializeToString(),
        saga.request.SerializeToString(),
        saga.failure_reason,
        saga.failure_message,
        saga.cancel_reason,
        int(saga.refund_due),
        saga.owner,
        saga.lease_expires,
    )


def _event(saga: Saga) -> str:
    return saga.step.value if saga.step else order_pb2.OrderStatus.Name(saga.order.status)


def _saga(row: sqlite3.Row) -> Saga:
    return Saga(
        order=order_pb2.Order.FromString(row["order_pb"]),
        request=order_pb2.PlaceOrderRequest.FromString(row["request_pb"]),
        fingerprint=row["fingerprint"],
        step=Step(row["step"]) if row["step"] else None,
        failure_reason=row["failure_reason"],
        failure_message=row["failure_message"],
        cancel_reason=row["cancel_reason"],
        refund_due=bool(row["refund_due"]),
        owner=row["owner"],
        lease_expires=row["lease_expires"],
    )
