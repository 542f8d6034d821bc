"""Inventory storage: stock per SKU and reservations, in PostgreSQL.

Invariants, per SKU: on_hand = available + reserved, 0 <= reserved <= on_hand
(a CHECK constraint, so even a bug cannot oversell), and the reserved units
equal the sum of the SKU's ACTIVE reservations. Every mutation locks what it
changes before it decides on it: the reservation's row, then the stock rows in
SKU order. Concurrent reservations of one SKU therefore queue on its row, each
reading the stock as the previous one committed it, and callers in any process
never both take the last unit; a state change is conditional on the state it
starts from, so an expiry racing a commit or a release happens once. What is
only inserted (a request_id, an order's reservation) is kept unique by its key:
of two concurrent inserts one fails and runs again, and then finds the other's.

Expiry: a reservation first expires due reservations (the units they held count
as available again); a commit or a release only looks at its own reservation's
expiry: a commit past it is refused as expired (the sweeper or the next
reservation marks it), a release past it ends it EXPIRED rather than RELEASED.
Reads expire lazily too, so they never count expired holds.

Round trips: a reservation, a commit or a release is the checkout's hot path.
The usual case of each (a new request_id; a reservation for an order without one,
no reservation due to expire, every unit there; a commit or a release of an
ACTIVE reservation not past its expiry) is one statement without BEGIN or COMMIT
(Database.statement): it locks, decides on what it locked, and writes only if
the case is the usual one, else it writes nothing. Everything else is one
transaction (Database.write_locking) that says why not or what to answer. A
reservation: BEGIN; its request_id, its order's reservation and the due
reservations (locked) in one query; every stock row it touches, locked and
read; the write; COMMIT. A commit or a release: BEGIN; its request_id and its
reservation (locked) in one query; the write (stock rows locked first when
there are several); COMMIT.

Retries: each mutating request_id is recorded with the method, a fingerprint
of the request and the reservation/SKU it touched. A repeat returns the
current state of that target; the same id on a different request fails with
REQUEST_ID_REUSED. One order has at most one reservation (UNIQUE order_id).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from services.runtime import Database, DatabaseStore, ServerConfig
from services.runtime.errors import FailedPrecondition, NotFound, PreconditionViolation
from services.runtime.migrations import Migrations
from services.runtime.postgres import Connection, execute_many, fetch_all, fetch_one
from services.runtime.retention import BATCH
from services.seed import SEED_PRODUCTS

__all__ = [
    "ACTIVE",
    "COMMITTED",
    "EXPIRED",
    "MIGRATIONS",
    "RELEASED",
    "InventoryStore",
    "Reservation",
    "Stock",
]

# Values of shop.inventory.v1.ReservationState, stored as integers.
ACTIVE, COMMITTED, RELEASED, EXPIRED = 1, 2, 3, 4
SEED_QUANTITY = 100
MAX_STOCK = 2**31 - 1  # StockLevel fields are int32

MIGRATIONS = Migrations.of_package("services.inventory")


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


async def _stock(connection: Connection, sku: str) -> Stock | None:
    row = await fetch_one(
        connection, "SELECT sku, on_hand, reserved, sold FROM stock WHERE sku = %s", (sku,)
    )
    return Stock(*row) if row else None


async def _lock_stock(connection: Connection, skus) -> dict[str, int]:
    """Lock the SKUs' rows in one fixed order (sorted), so two transactions that
    touch the same SKUs wait for each other instead of deadlocking; the units
    available of each (an unknown SKU is not in the answer)."""
    rows = await fetch_all(
        connection,
        "SELECT sku, on_hand - reserved FROM stock WHERE sku = ANY(%s) ORDER BY sku FOR UPDATE",
        (sorted(set(skus)),),
    )
    return dict(rows)


# A reservation with its items, as one row of `reservations r` (see _from_row).
_RESERVATION = (
    "r.id, r.order_id, r.state, r.create_us, r.expire_us,"
    " ARRAY(SELECT sku FROM reservation_items WHERE reservation_id = r.id ORDER BY position),"
    " ARRAY(SELECT quantity FROM reservation_items WHERE reservation_id = r.id ORDER BY position)"
)
# An earlier request with this request_id, as one array value (or NULL): see _replay_target.
_EARLIER = "(SELECT ARRAY[method, fingerprint, target] FROM requests WHERE request_id = %s)"
# ACTIVE reservations due to expire, locked (those another transaction holds are skipped).
_DUE = (
    "SELECT id FROM reservations WHERE state = %s AND expire_us <= %s"
    " ORDER BY id FOR UPDATE SKIP LOCKED"
)


def _from_row(row: Sequence) -> Reservation:
    """A Reservation from the columns of _RESERVATION."""
    items = tuple(zip(row[5], row[6], strict=True))
    return Reservation(row[0], row[1], items, row[2], row[3], row[4])


async def _reservation(connection: Connection, reservation_id: str) -> Reservation | None:
    row = await fetch_one(
        connection, f"SELECT {_RESERVATION} FROM reservations r WHERE id = %s", (reservation_id,)
    )
    return _from_row(row) if row else None


_ADJUST = (
    "UPDATE stock SET on_hand = on_hand + %s * item.quantity,"
    " reserved = reserved + %s * item.quantity, sold = sold + %s * item.quantity"
    " FROM unnest(%s::text[], %s::int[]) AS item (sku, quantity) WHERE stock.sku = item.sku"
)


def _adjusting(items, on_hand: int, reserved: int, sold: int) -> tuple:
    """The parameters of _ADJUST: add these multiples of each item's quantity to its
    SKU's counters (each SKU once: requests name a SKU at most once)."""
    return (on_hand, reserved, sold, [sku for sku, _ in items], [q for _, q in items])


async def _lock_stock_of(connection: Connection, items) -> None:
    """Locks the items' stock rows in SKU order before an _ADJUST updates them. One SKU
    needs no lock first: the update takes it, and there is no order to keep."""
    if len(items) > 1:
        await _lock_stock(connection, [sku for sku, _ in items])


async def _finish(
    connection: Connection,
    reservation: Reservation,
    state: int,
    stock_change: tuple[int, int, int],
    remembered: tuple[str, str, str],
) -> Reservation:
    """Moves a locked reservation to `state`, its stock by `stock_change` (on_hand,
    reserved, sold multiples of each quantity) and records the request, in one
    statement; the reservation as it is now."""
    await _lock_stock_of(connection, reservation.items)
    request_id, method, print_ = remembered
    await connection.execute(
        f"WITH adjusted AS ({_ADJUST}),"
        " moved AS (UPDATE reservations SET state = %s WHERE id = %s)"
        " INSERT INTO requests (request_id, method, fingerprint, target)"
        " VALUES (%s, %s, %s, %s)",
        (*_adjusting(reservation.items, *stock_change), state, reservation.id,
         request_id, method, print_, reservation.id),
    )  # fmt: skip
    return dataclasses.replace(reservation, state=state)


async def expire_due(connection: Connection, now_us: int | None = None) -> int:
    """Release every ACTIVE reservation past its expiry; how many were released.

    Due reservations that another transaction holds (it is committing or releasing
    them) are skipped: that one decides, and a later pass expires what is left. The
    stock rows of all the others are locked at once, in SKU order, like any writer's."""
    now_us = _now_us() if now_us is None else now_us
    due = [
        reservation_id for (reservation_id,) in await fetch_all(connection, _DUE, (ACTIVE, now_us))
    ]
    await _expire(connection, due)
    return len(due)


async def _expire(
    connection: Connection, due: Sequence[str], also: Sequence[str] = ()
) -> dict[str, int]:
    """Expires these reservations (locked by _DUE). Their SKUs' stock rows and those of
    `also` are locked in one sorted pass: a transaction that locked them in two would
    take them out of order, and deadlock with one locking the same SKUs at once. The
    units available of each locked SKU, once the reservations are expired."""
    reservations = [await _reservation(connection, reservation_id) for reservation_id in due]
    skus = [sku for r in reservations for sku, _ in r.items] + list(also)
    available = await _lock_stock(connection, skus) if skus else {}
    for reservation in reservations:
        await _change_state(connection, reservation.id, ACTIVE, EXPIRED)
        await connection.execute(_ADJUST, _adjusting(reservation.items, 0, -1, 0))
        for sku, quantity in reservation.items:
            available[sku] += quantity
    return available


async def _change_state(connection: Connection, reservation_id: str, old: int, new: int) -> bool:
    """Moves the reservation from `old` to `new`; False if it was not in `old` any more."""
    cursor = await connection.execute(
        "UPDATE reservations SET state = %s WHERE id = %s AND state = %s",
        (new, reservation_id, old),
    )
    return cursor.rowcount == 1


async def _any_due(connection: Connection) -> bool:
    return bool(
        await fetch_one(
            connection,
            "SELECT 1 FROM reservations WHERE state = %s AND expire_us <= %s LIMIT 1",
            (ACTIVE, _now_us()),
        )
    )


async def _replayed(
    connection: Connection, request_id: str, method: str, print_: str
) -> str | None:
    """The target of an earlier request with this id, or None if the id is new."""
    row = await fetch_one(
        connection,
        "SELECT method, fingerprint, target FROM requests WHERE request_id = %s",
        (request_id,),
    )
    return _replay_target(row, request_id, method, print_)


def _replay_target(row, request_id: str, method: str, print_: str) -> str | None:
    """The target of an earlier request (its row of `requests`, or None if the id is
    new); REQUEST_ID_REUSED if it was a different request."""
    if row is None:
        return None
    if (row[0], row[1]) != (method, print_):
        raise FailedPrecondition(
            "REQUEST_ID_REUSED",
            f"request_id {request_id!r} was already used for a different request",
            metadata={"request_id": request_id},
        )
    return row[2]


async def _remember(
    connection: Connection, request_id: str, method: str, print_: str, target: str
) -> None:
    await connection.execute(
        "INSERT INTO requests (request_id, method, fingerprint, target) VALUES (%s, %s, %s, %s)",
        (request_id, method, print_, target),
    )


async def _unknown_skus(connection: Connection, skus: Sequence[str]) -> None:
    known = {
        sku
        for (sku,) in await fetch_all(
            connection, "SELECT sku FROM stock WHERE sku = ANY(%s)", (list(set(skus)),)
        )
    }
    _refuse_unknown(skus, known)


def _refuse_unknown(skus: Sequence[str], known) -> None:
    """NOT_FOUND naming every SKU of `skus` not in `known`, in request order."""
    missing = [sku for sku in dict.fromkeys(skus) if sku not in known]
    if missing:
        raise NotFound(
            f"unknown SKUs: {', '.join(missing)}",
            reason="SKU_NOT_FOUND",
            metadata={"missing_skus": ",".join(missing)},
        )


async def _prune_request_ids(connection: Connection, older_than_seconds: float) -> int:
    cursor = await connection.execute(
        "DELETE FROM requests WHERE request_id IN (SELECT request_id FROM requests"
        " WHERE created_at < clock_timestamp() - make_interval(secs => %s) LIMIT %s)",
        (older_than_seconds, BATCH),
    )
    return cursor.rowcount


async def _seed_if_empty(connection: Connection) -> None:
    if await fetch_one(connection, "SELECT 1 FROM stock LIMIT 1"):
        return
    await execute_many(
        connection,
        "INSERT INTO stock (sku, on_hand) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        [(p.sku, SEED_QUANTITY) for p in SEED_PRODUCTS],
    )


# The usual reservation in one statement (autocommit): a request_id not seen before, an
# order without a reservation, no reservation due to expire, every SKU known and with
# the units asked. It locks the stock rows in SKU order and decides on them as locked
# (a row another transaction changed meanwhile is read as that one committed it), then
# writes only if the answer is yes; `yes` says whether it did. Anything else it leaves
# untouched for the full transaction (InventoryStore._reserve), which says why not.
_RESERVE_AT_ONCE = """
WITH usual AS (
    SELECT NOT EXISTS (SELECT FROM requests WHERE request_id = %(request_id)s)
       AND NOT EXISTS (SELECT FROM reservations WHERE order_id = %(order_id)s)
       AND NOT EXISTS (SELECT FROM reservations WHERE state = %(active)s
                                                  AND expire_us <= %(now)s) AS yes
), item AS (
    SELECT * FROM unnest(%(skus)s::text[], %(quantities)s::int[])
        WITH ORDINALITY AS item (sku, quantity, position)
), locked AS (
    SELECT sku, on_hand - reserved AS available FROM stock
    WHERE sku = ANY(%(skus)s::text[]) AND (SELECT yes FROM usual)
    ORDER BY sku FOR UPDATE
), go AS (
    SELECT count(*) = cardinality(%(skus)s::text[])
           AND coalesce(bool_and(locked.available >= item.quantity), false) AS yes
    FROM item JOIN locked USING (sku)
), held AS (
    INSERT INTO reservations (id, order_id, state, create_us, expire_us)
    SELECT %(id)s, %(order_id)s, %(active)s, %(now)s, %(expire_us)s WHERE (SELECT yes FROM go)
), items AS (
    INSERT INTO reservation_items (reservation_id, position, sku, quantity)
    SELECT %(id)s, position - 1, sku, quantity FROM item WHERE (SELECT yes FROM go)
), adjusted AS (
    UPDATE stock SET reserved = stock.reserved + item.quantity
    FROM item WHERE stock.sku = item.sku AND (SELECT yes FROM go)
), remembered AS (
    INSERT INTO requests (request_id, method, fingerprint, target)
    SELECT %(request_id)s, 'ReserveStock', %(print)s, %(id)s WHERE (SELECT yes FROM go)
)
SELECT yes FROM go
"""


async def _reserve_at_once(
    connection: Connection, order_id, items, ttl_us, request_id, print_
) -> Reservation | None:
    """The reservation if it was the usual case (see _RESERVE_AT_ONCE), else None and
    nothing written."""
    now = _now_us()
    reservation = Reservation(f"res_{uuid.uuid4().hex}", order_id, items, ACTIVE, now, now + ttl_us)
    (done,) = await fetch_one(
        connection,
        _RESERVE_AT_ONCE,
        {"request_id": request_id, "order_id": order_id, "active": ACTIVE, "now": now,
         "skus": [sku for sku, _ in items], "quantities": [q for _, q in items],
         "id": reservation.id, "expire_us": reservation.expire_us, "print": print_},
    )  # fmt: skip
    return reservation if done else None


# The usual commit or release in one statement (autocommit): an ACTIVE reservation not
# past its expiry and a request_id not seen before. The reservation's row is locked
# (and read again as the transaction it waited for left it), then its stock rows in
# SKU order, before anything is written (every write waits for `locked`). Anything
# else it leaves untouched for the full transaction (_commit, _release), which says
# why not or what to answer. Expiry is judged at the time the request came, before
# any wait for a lock: a commit that came in time is not refused for the wait.
_FINISH_AT_ONCE = """
WITH usual AS (
    SELECT id, order_id, create_us, expire_us FROM reservations
    WHERE id = %(id)s AND state = %(active)s AND expire_us > %(now)s
      AND NOT EXISTS (SELECT FROM requests WHERE request_id = %(request_id)s)
    FOR UPDATE
), item AS (
    SELECT sku, quantity, position FROM reservation_items
    WHERE reservation_id IN (SELECT id FROM usual)
), locked AS (
    SELECT sku FROM stock WHERE sku IN (SELECT sku FROM item) ORDER BY sku FOR UPDATE
), moved AS (
    UPDATE reservations SET state = %(state)s
    WHERE id IN (SELECT id FROM usual) AND (SELECT count(*) FROM locked) > 0
), adjusted AS (
    UPDATE stock SET on_hand = on_hand + %(on_hand)s * item.quantity,
                     reserved = reserved + %(reserved)s * item.quantity,
                     sold = sold + %(sold)s * item.quantity
    FROM item WHERE stock.sku = item.sku AND (SELECT count(*) FROM locked) > 0
), remembered AS (
    INSERT INTO requests (request_id, method, fingerprint, target)
    SELECT %(request_id)s, %(method)s, %(print)s, id FROM usual
    WHERE (SELECT count(*) FROM locked) > 0
)
SELECT id, order_id, %(state)s, create_us, expire_us,
       ARRAY(SELECT sku FROM item ORDER BY position),
       ARRAY(SELECT quantity FROM item ORDER BY position)
FROM usual
"""


async def _finish_at_once(
    connection: Connection,
    reservation_id: str,
    state: int,
    stock_change: tuple[int, int, int],
    remembered: tuple[str, str, str],
) -> Reservation | None:
    """The reservation moved to `state` if it was the usual case (see _FINISH_AT_ONCE),
    else None and nothing written. `stock_change` as for _finish."""
    request_id, method, print_ = remembered
    on_hand, reserved, sold = stock_change
    row = await fetch_one(
        connection,
        _FINISH_AT_ONCE,
        {"id": reservation_id, "active": ACTIVE, "now": _now_us(), "request_id": request_id,
         "state": state, "on_hand": on_hand, "reserved": reserved, "sold": sold,
         "method": method, "print": print_},
    )  # fmt: skip
    return _from_row(row) if row else None


class InventoryStore(DatabaseStore):
    @classmethod
    async def open(cls, config: ServerConfig) -> InventoryStore:
        database = await Database.open(config.database_url, MIGRATIONS, name="inventory")
        try:
            await database.write_locking(_seed_if_empty)
        except BaseException:
            await database.close()
            raise
        return cls(database)

    async def expire_due(self) -> int:
        return await self.database.write_locking(expire_due)

    async def stock(self, skus: Sequence[str]) -> list[Stock]:
        """Stock of each SKU, in order; NOT_FOUND naming every unknown one."""
        if await self.database.read(_any_due):
            await self.expire_due()  # lazily, so reads never count expired holds
        return await self.database.read(self._stock, list(skus))

    @staticmethod
    async def _stock(connection, skus: list[str]) -> list[Stock]:
        await _unknown_skus(connection, skus)
        return [await _stock(connection, sku) for sku in skus]

    async def prune_request_ids(self, older_than_seconds: float) -> int:
        """Forgets up to BATCH request_ids first seen longer ago than given (a retry
        that old is not coming); how many."""
        return await self.database.write_locking(_prune_request_ids, older_than_seconds)

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
        arguments = (order_id, tuple(items), ttl_us, request_id, print_)
        if usual := await self.database.statement(_reserve_at_once, *arguments):
            return usual
        return await self.database.write_locking(self._reserve, *arguments)

    @staticmethod
    async def _reserve(connection, order_id, items, ttl_us, request_id, print_) -> Reservation:
        now = _now_us()
        # One query: an earlier request with this id, the order's reservation if it has
        # one, and the reservations due to expire (locked: expired first, below).
        earlier, existing, due = await fetch_one(
            connection,
            f"SELECT {_EARLIER}, (SELECT id FROM reservations WHERE order_id = %s), ARRAY({_DUE})",
            (request_id, order_id, ACTIVE, now),
        )
        skus = [sku for sku, _ in items]
        available = await _expire(connection, due, also=skus)
        if target := _replay_target(earlier, request_id, "ReserveStock", print_):
            return await _reservation(connection, target)
        if existing:  # one reservation per order: a second ask gets the first one
            await _remember(connection, request_id, "ReserveStock", print_, existing)
            return await _reservation(connection, existing)
        _refuse_unknown(skus, available)
        short = [
            PreconditionViolation(
                "STOCK", sku, f"requested {quantity}, only {available[sku]} available"
            )
            for sku, quantity in items
            if available[sku] < quantity
        ]
        if short:
            raise FailedPrecondition(
                "INSUFFICIENT_STOCK",
                f"not enough stock for {', '.join(v.subject for v in short)}",
                short,
                metadata={"skus": ",".join(v.subject for v in short)},
            )
        reservation = Reservation(
            f"res_{uuid.uuid4().hex}", order_id, tuple(items), ACTIVE, now, now + ttl_us
        )
        quantities = [q for _, q in items]
        await connection.execute(
            "WITH held AS (INSERT INTO reservations (id, order_id, state, create_us, expire_us)"
            " VALUES (%s, %s, %s, %s, %s)),"
            " items AS (INSERT INTO reservation_items (reservation_id, position, sku, quantity)"
            " SELECT %s, item.position - 1, item.sku, item.quantity"
            " FROM unnest(%s::text[], %s::int[])"
            " WITH ORDINALITY AS item (sku, quantity, position)),"
            f" adjusted AS ({_ADJUST})"
            " INSERT INTO requests (request_id, method, fingerprint, target)"
            " VALUES (%s, 'ReserveStock', %s, %s)",
            (reservation.id, order_id, ACTIVE, now, now + ttl_us,
             reservation.id, skus, quantities,
             *_adjusting(items, 0, 1, 0),
             request_id, print_, reservation.id),
        )  # fmt: skip
        return reservation

    async def commit(self, reservation_id: str, request_id: str, print_: str) -> Reservation:
        remembered = (request_id, "CommitReservation", print_)
        if usual := await self.database.statement(
            _finish_at_once, reservation_id, COMMITTED, (-1, -1, 1), remembered
        ):
            return usual
        return await self.database.write_locking(self._commit, reservation_id, request_id, print_)

    @staticmethod
    async def _commit(connection, reservation_id, request_id, print_) -> Reservation:
        remembered = (request_id, "CommitReservation", print_)
        reservation, earlier = await _existing(connection, reservation_id, *remembered)
        if earlier:
            return earlier
        if reservation.state == ACTIVE and not _past_expiry(reservation):
            return await _finish(connection, reservation, COMMITTED, (-1, -1, 1), remembered)
        if reservation.state != COMMITTED:
            ended = "released" if reservation.state == RELEASED else "expired"
            raise FailedPrecondition(
                f"RESERVATION_{ended.upper()}",
                f"reservation {reservation_id} was {ended} and cannot be committed",
                [PreconditionViolation("RESERVATION", reservation_id, f"is {ended}")],
            )
        await _remember(connection, *remembered, reservation_id)
        return reservation

    async def release(self, reservation_id: str, request_id: str, print_: str) -> Reservation:
        remembered = (request_id, "ReleaseReservation", print_)
        if usual := await self.database.statement(
            _finish_at_once, reservation_id, RELEASED, (0, -1, 0), remembered
        ):
            return usual
        return await self.database.write_locking(self._release, reservation_id, request_id, print_)

    @staticmethod
    async def _release(connection, reservation_id, request_id, print_) -> Reservation:
        remembered = (request_id, "ReleaseReservation", print_)
        reservation, earlier = await _existing(connection, reservation_id, *remembered)
        if earlier:
            return earlier
        if reservation.state == ACTIVE:
            # Its units go back either way; one past its expiry ends as the sweeper
            # would have ended it.
            state = EXPIRED if _past_expiry(reservation) else RELEASED
            return await _finish(connection, reservation, state, (0, -1, 0), remembered)
        if reservation.state == COMMITTED:
            # An order cancelled after checkout: its sold units go back on the shelf.
            return await _finish(connection, reservation, RELEASED, (1, 0, -1), remembered)
        await _remember(connection, *remembered, reservation_id)
        return reservation

    async def restock(self, sku: str, quantity: int, request_id: str, print_: str) -> Stock:
        return await self.database.write_locking(self._restock, sku, quantity, request_id, print_)

    @staticmethod
    async def _restock(connection, sku, quantity, request_id, print_) -> Stock:
        if await _replayed(connection, request_id, "Restock", print_):
            return await _stock(connection, sku)
        await _lock_stock(connection, [sku])
        current = await _stock(connection, sku)
        if current and current.on_hand + quantity > MAX_STOCK:
            raise FailedPrecondition(
                "STOCK_LIMIT",
                f"{sku} would exceed {MAX_STOCK} units on hand",
                [PreconditionViolation("STOCK", sku, "on_hand would overflow")],
            )
        await connection.execute(
            "INSERT INTO stock (sku, on_hand) VALUES (%s, %s) "
            "ON CONFLICT (sku) DO UPDATE SET on_hand = stock.on_hand + excluded.on_hand",
            (sku, quantity),
        )
        await _remember(connection, request_id, "Restock", print_, sku)
        return await _stock(connection, sku)


def _past_expiry(reservation: Reservation) -> bool:
    return reservation.expire_us <= _now_us()


async def _existing(
    connection: Connection, reservation_id: str, request_id: str, method: str, print_: str
) -> tuple[Reservation, Reservation | None]:
    """The reservation, its row locked for this transaction, and what an earlier request
    with this request_id answered (None if the id is new), in one query. NOT_FOUND if
    there is no such reservation; REQUEST_ID_REUSED if the id was used for another request."""
    row = await fetch_one(
        connection,
        f"SELECT {_EARLIER}, {_RESERVATION} FROM reservations r WHERE id = %s FOR UPDATE",
        (request_id, reservation_id),
    )
    if row is None:
        await _replayed(connection, request_id, method, print_)  # a reused id says so first
        raise NotFound(
            f"no reservation {reservation_id!r}",
            reason="RESERVATION_NOT_FOUND",
            metadata={"reservation_id": reservation_id},
        )
    reservation = _from_row(row[1:])
    target = _replay_target(row[0], request_id, method, print_)
    if target is None:
        return reservation, None
    if target != reservation.id:  # not expected: a request's fingerprint covers reservation_id
        return reservation, await _reservation(connection, target)
    return reservation, reservation
