"""Inventory storage: stock per SKU and reservations, in SQLite.

Invariants, per SKU: on_hand = available + reserved, 0 <= reserved <= on_hand
(a CHECK constraint, so even a bug cannot oversell), and the reserved units
equal the sum of the SKU's ACTIVE reservations. Every mutation is one
BEGIN IMMEDIATE transaction that first expires due reservations, then reads,
checks and writes, so concurrent callers in any process see each other's
effects in a single order and never both take the last unit.

Retries: each mutating request_id is recorded with the method, a fingerprint
of the request and the reservation/SKU it touched. A repeat returns the
current state of that target; the same id on a different request fails with
REQUEST_ID_REUSED. One order has at most one reservation (UNIQUE order_id).
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from services.runtime import Database, DatabaseStore, ServerConfig
from services.runtime.errors import FailedPrecondition, NotFound, PreconditionViolation
from services.seed import SEED_PRODUCTS

__all__ = ["ACTIVE", "COMMITTED", "EXPIRED", "RELEASED", "InventoryStore", "Reservation", "Stock"]

# Values of shop.inventory.v1.ReservationState, stored as integers.
ACTIVE, COMMITTED, RELEASED, EXPIRED = 1, 2, 3, 4
SEED_QUANTITY = 100
MAX_STOCK = 2**31 - 1  # StockLevel fields are int32

SCHEMA = """
CREATE TABLE IF NOT EXISTS stock (
    sku TEXT PRIMARY KEY,
    on_hand INTEGER NOT NULL,
    reserved INTEGER NOT NULL DEFAULT 0,
    sold INTEGER NOT NULL DEFAULT 0,
    CHECK (reserved >= 0 AND reserved <= on_hand AND on_hand <= 2147483647 AND sold >= 0)
);
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    state INTEGER NOT NULL,
    create_us INTEGER NOT NULL,
    expire_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS reservations_due ON reservations (state, expire_us);
CREATE TABLE IF NOT EXISTS reservation_items (
    reservation_id TEXT NOT NULL REFERENCES reservations (id),
    position INTEGER NOT NULL,
    sku TEXT NOT NULL REFERENCES stock (sku),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, position)
);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    method TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    target TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class Stock:
    sku: str
    on_hand: int
    reserved: int
    sold: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class Reservation:
    id: str
    order_id: str
    items: tuple[tuple[str, int], ...]  # (sku, quantity) in request order
    state: int
    create_us: int
    expire_us: int


def fingerprint(method: str, request_bytes: bytes) -> str:
    return hashlib.sha256(method.encode() + b"\0" + request_bytes).hexdigest()


def _now_us() -> int:
    return time.time_ns() // 1000


def _stock(connection: sqlite3.Connection, sku: str) -> Stock | None:
    row = connection.execute(
        "SELECT sku, on_hand, reserved, sold FROM stock WHERE sku = ?", (sku,)
    ).fetchone()
    return Stock(*row) if row else None


def _reservation(connection: sqlite3.Connection, reservation_id: str) -> Reservation | None:
    row = connection.execute(
        "SELECT id, order_id, state, create_us, expire_us FROM reservations WHERE id = ?",
        (reservation_id,),
    ).fetchone()
    if row is None:
        return None
    items = tuple(
        (sku, quantity)
        for sku, quantity in connection.execute(
            "SELECT sku, quantity FROM reservation_items WHERE reservation_id = ? "
            "ORDER BY position",
            (reservation_id,),
        )
    )
    return Reservation(row[0], row[1], items, row[2], row[3], row[4])


def _adjust(connection: sqlite3.Connection, items, on_hand: int, reserved: int, sold: int) -> None:
    """Add the given multiples of each item's quantity to its SKU's counters."""
    connection.executemany(
        "UPDATE stock SET on_hand = on_hand + ?, reserved = reserved + ?, sold = sold + ? "
        "WHERE sku = ?",
        [(on_hand * q, reserved * q, sold * q, sku) for sku, q in items],
    )


def _set_state(connection: sqlite3.Connection, reservation_id: str, state: int) -> None:
    connection.execute("UPDATE reservations SET state = ? WHERE id = ?", (state, reservation_id))


def expire_due(connection: sqlite3.Connection, now_us: int | None = None) -> int:
    """Release every ACTIVE reservation past its expiry; how many were released."""
    now_us = _now_us() if now_us is None else now_us
    due = [
        reservation_id
        for (reservation_id,) in connection.execute(
            "SELECT id FROM reservations WHERE state = ? AND expire_us <= ?", (ACTIVE, now_us)
        )
    ]
    for reservation_id in due:
        reservation = _reservation(connection, reservation_id)
        _adjust(connection, reservation.items, on_hand=0, reserved=-1, sold=0)
        _set_state(connection, reservation_id, EXPIRED)
    return len(due)


def _any_due(connection: sqlite3.Connection) -> bool:
    return bool(
        connection.execute(
            "SELECT 1 FROM reservations WHERE state = ? AND expire_us <= ? LIMIT 1",
            (ACTIVE, _now_us()),
        ).fetchone()
    )


def _replayed(connection, request_id: str, method: str, print_: str) -> str | None:
    """The target of an earlier request with this id, or None if the id is new."""
    row = connection.execute(
        "SELECT method, fingerprint, target FROM requests WHERE request_id = ?", (request_id,)
    ).fetchone()
    if row is None:
        return None
    if (row[0], row[1]) != (method, print_):
        raise FailedPrecondition(
            "REQUEST_ID_REUSED",
            f"request_id {request_id!r} was already used for a different request",
            metadata={"request_id": request_id},
        )
    return row[2]


def _remember(connection, request_id: str, method: str, print_: str, target: str) -> None:
    connection.execute(
        "INSERT INTO requests (request_id, method, fingerprint, target) VALUES (?, ?, ?, ?)",
        (request_id, method, print_, target),
    )


def _unknown_skus(connection, skus: Sequence[str]) -> None:
    missing = [
        sku
        for sku in dict.fromkeys(skus)
        if not connection.execute("SELECT 1 FROM stock WHERE sku = ?", (sku,)).fetchone()
    ]
    if missing:
        raise NotFound(
            f"unknown SKUs: {', '.join(missing)}",
            reason="SKU_NOT_FOUND",
            metadata={"missing_skus": ",".join(missing)},
        )


def _seed_if_empty(connection: sqlite3.Connection) -> None:
    if connection.execute("SELECT 1 FROM stock LIMIT 1").fetchone():
        return
    connection.executemany(
        "INSERT OR IGNORE INTO stock (sku, on_hand) VALUES (?, ?)",
        [(p.sku, SEED_QUANTITY) for p in SEED_PRODUCTS],
    )


class InventoryStore(DatabaseStore):
    @classmethod
    async def open(cls, config: ServerConfig) -> InventoryStore:
        database = await Database.open(config.database_path(), SCHEMA)
        try:
            await database.write(_seed_if_empty)
        except BaseException:
            await database.close()
            raise
        return cls(database)

    async def expire_due(self) -> int:
        return await self.database.write(expire_due)

    async def stock(self, skus: Sequence[str]) -> list[Stock]:
        """Stock of each SKU, in order; NOT_FOUND naming every unknown one."""
        if await self.database.read(_any_due):
            await self.expire_due()  # lazily, so reads never count expired holds
        return await self.database.read(self._stock, list(skus))

    @staticmethod
    def _stock(connection, skus: list[str]) -> list[Stock]:
        _unknown_skus(connection, skus)
        return [_stock(connection, sku) for sku in skus]

    async def reservation(self, reservation_id: str) -> Reservation | None:
        return await self.database.read(_reservation, reservation_id)

    async def reserve(
        self,
        order_id: str,
        items: Sequence[tuple[str, int]],
        ttl_us: int,
        request_id: str,
        print_: str,
    ) -> Reservation:
        return await self.database.write(
            self._reserve, order_id, tuple(items), ttl_us, request_id, print_
        )

    @staticmethod
    def _reserve(connection, order_id, items, ttl_us, request_id, print_) -> Reservation:
        now = _now_us()
        expire_due(connection, now)
        if target := _replayed(connection, request_id, "ReserveStock", print_):
            return _reservation(connection, target)
        existing = connection.execute(
            "SELECT id FROM reservations WHERE order_id = ?", (order_id,)
        ).fetchone()
        if existing:  # one reservation per order: a second ask gets the first one
            _remember(connection, request_id, "ReserveStock", print_, existing[0])
            return _reservation(connection, existing[0])
        _unknown_skus(connection, [sku for sku, _ in items])
        short = []
        for sku, quantity in items:
            available = _stock(connection, sku).available
            if available < quantity:
                short.append(
                    PreconditionViolation(
                        "STOCK", sku, f"requested {quantity}, only {available} available"
                    )
                )
        if short:
            raise FailedPrecondition(
                "INSUFFICIENT_STOCK",
                f"not enough stock for {', '.join(v.subject for v in short)}",
                short,
                metadata={"skus": ",".join(v.subject for v in short)},
            )
        reservation_id = f"res_{uuid.uuid4().hex}"
        connection.execute(
            "INSERT INTO reservations (id, order_id, state, create_us, expire_us) "
            "VALUES (?, ?, ?, ?, ?)",
            (reservation_id, order_id, ACTIVE, now, now + ttl_us),
        )
        connection.executemany(
            "INSERT INTO reservation_items (reservation_id, position, sku, quantity) "
            "VALUES (?, ?, ?, ?)",
            [(reservation_id, i, sku, q) for i, (sku, q) in enumerate(items)],
        )
        _adjust(connection, items, on_hand=0, reserved=1, sold=0)
        _remember(connection, request_id, "ReserveStock", print_, reservation_id)
        return _reservation(connection, reservation_id)

    async def commit(self, reservation_id: str, request_id: str, print_: str) -> Reservation:
        return await self.database.write(self._commit, reservation_id, request_id, print_)

    @staticmethod
    def _commit(connection, reservation_id, request_id, print_) -> Reservation:
        expire_due(connection)
        if target := _replayed(connection, request_id, "CommitReservation", print_):
            return _reservation(connection, target)
        reservation = _existing(connection, reservation_id)
        if reservation.state == ACTIVE:
            _adjust(connection, reservation.items, on_hand=-1, reserved=-1, sold=1)
            _set_state(connection, reservation_id, COMMITTED)
        elif reservation.state != COMMITTED:
            ended = "expired" if reservation.state == EXPIRED else "released"
            raise FailedPrecondition(
                f"RESERVATION_{ended.upper()}",
                f"reservation {reservation_id} was {ended} and cannot be committed",
                [PreconditionViolation("RESERVATION", reservation_id, f"is {ended}")],
            )
        _remember(connection, request_id, "CommitReservation", print_, reservation_id)
        return _reservation(connection, reservation_id)

    async def release(self, reservation_id: str, request_id: str, print_: str) -> Reservation:
        return await self.database.write(self._release, reservation_id, request_id, print_)

    @staticmethod
    def _release(connection, reservation_id, request_id, print_) -> Reservation:
        expire_due(connection)
        if target := _replayed(connection, request_id, "ReleaseReservation", print_):
            return _reservation(connection, target)
        reservation = _existing(connection, reservation_id)
        if reservation.state == ACTIVE:
            _adjust(connection, reservation.items, on_hand=0, reserved=-1, sold=0)
            _set_state(connection, reservation_id, RELEASED)
        elif reservation.state == COMMITTED:
            # An order cancelled after checkout: its sold units go back on the shelf.
            _adjust(connection, reservation.items, on_hand=1, reserved=0, sold=-1)
            _set_state(connection, reservation_id, RELEASED)
        _remember(connection, request_id, "ReleaseReservation", print_, reservation_id)
        return _reservation(connection, reservation_id)

    async def restock(self, sku: str, quantity: int, request_id: str, print_: str) -> Stock:
        return await self.database.write(self._restock, sku, quantity, request_id, print_)

    @staticmethod
    def _restock(connection, sku, quantity, request_id, print_) -> Stock:
        if _replayed(connection, request_id, "Restock", print_):
            return _stock(connection, sku)
        current = _stock(connection, sku)
        if current and current.on_hand + quantity > MAX_STOCK:
            raise FailedPrecondition(
                "STOCK_LIMIT",
                f"{sku} would exceed {MAX_STOCK} units on hand",
                [PreconditionViolation("STOCK", sku, "on_hand would overflow")],
            )
        connection.execute(
            "INSERT INTO stock (sku, on_hand) VALUES (?, ?) "
            "ON CONFLICT (sku) DO UPDATE SET on_hand = on_hand + excluded.on_hand",
            (sku, quantity),
        )
        _remember(connection, request_id, "Restock", print_, sku)
        return _stock(connection, sku)


def _existing(connection, reservation_id: str) -> Reservation:
    reservation = _reservation(connection, reservation_id)
    if reservation is None:
        raise NotFound(
            f"no reservation {reservation_id!r}",
            reason="RESERVATION_NOT_FOUND",
            metadata={"reservation_id": reservation_id},
        )
    return reservation
