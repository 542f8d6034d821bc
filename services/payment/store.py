"""Payment storage: payments and refunds in PostgreSQL, deduplicated on request_id.

A charge is recorded after the gateway answers; the gateway's idempotency key
is the charge's request_id, so a request repeated at any point (before the
record exists, on another replica, after a crash) captures at most once, and
the UNIQUE request_id makes exactly one record win.

A refund first *holds* its amount (a PENDING refund, counted in pending_nanos)
in one SERIALIZABLE transaction that checks captured >= refunded + pending
+ amount, then asks the gateway, then completes. Concurrent refunds of one
payment, in any process, therefore never add up to more than the capture. If
the gateway does not answer, the hold stays until its answer is known (a retry
with the same request_id, or resolver.py): only a definite refusal drops it.

Only the method's kind, brand and last four digits are stored: never a token
or a card number.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from services.payment.gateway import PaymentGateway, SimulatedGateway
from services.runtime import Database, DatabaseStore, ServerConfig
from services.runtime.errors import FailedPrecondition, NotFound, Unavailable
from services.runtime.migrations import Migrations
from services.runtime.postgres import Connection, fetch_all, fetch_one

__all__ = [
    "MIGRATIONS",
    "NewCharge",
    "Payment",
    "PaymentStore",
    "Refund",
    "request_id_reused",
]

# Values of shop.payment.v1.PaymentStatus.
CAPTURED, DECLINED, PARTIALLY_REFUNDED, REFUNDED = 1, 2, 3, 4
PENDING, DONE = "pending", "done"

MIGRATIONS = Migrations.of_package("services.payment")


@dataclass(frozen=True)
class Refund:
    id: str
    payment_id: str
    amount_nanos: int
    reason: str
    state: str
    create_us: int


@dataclass(frozen=True)
class Payment:
    id: str
    order_id: str
    currency: str
    amount_nanos: int
    refunded_nanos: int
    status: int
    decline_reason: int
    method_kind: str
    method_brand: str
    last4: str
    gateway_reference: str
    create_us: int
    refunds: tuple[Refund, ...]  # completed ones, oldest first


@dataclass(frozen=True)
class NewCharge:
    order_id: str
    currency: str
    amount_nanos: int
    method_kind: str


def _now_us() -> int:
    return time.time_ns() // 1000


def request_id_reused(request_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "REQUEST_ID_REUSED",
        f"request_id {request_id!r} was already used for a different request",
        metadata={"request_id": request_id},
    )


_PAYMENT = (
    "id, order_id, currency, amount_nanos, refunded_nanos, status, decline_reason,"
    " method_kind, method_brand, last4, gateway_reference, create_us"
)


async def _payment(connection: Connection, payment_id: str) -> Payment | None:
    row = await fetch_one(
        connection, f"SELECT {_PAYMENT} FROM payments WHERE id = %s", (payment_id,)
    )
    if row is None:
        return None
    refunds = tuple(
        Refund(*r)
        for r in await fetch_all(
            connection,
            "SELECT id, payment_id, amount_nanos, reason, state, create_us FROM refunds "
            "WHERE payment_id = %s AND state = %s ORDER BY create_us, id",
            (payment_id, DONE),
        )
    )
    return Payment(*row, refunds=refunds)


async def _by_request(connection, table: str, request_id: str, fingerprint: str) -> str | None:
    row = await fetch_one(
        connection, f"SELECT id, fingerprint FROM {table} WHERE request_id = %s", (request_id,)
    )
    if row is None:
        return None
    if row[1] != fingerprint:
        raise request_id_reused(request_id)
    return row[0]


async def _existing_payment(connection, payment_id: str) -> Payment:
    payment = await _payment(connection, payment_id)
    if payment is None:
        raise NotFound(
            f"no payment {payment_id!r}",
            reason="PAYMENT_NOT_FOUND",
            metadata={"payment_id": payment_id},
        )
    return payment


class PaymentStore(DatabaseStore):
    """The payment records plus the gateway they are made through (closed together)."""

    def __init__(self, database: Database, gateway: PaymentGateway) -> None:
        super().__init__(database)
        self.gateway = gateway

    @classmethod
    async def open(cls, config: ServerConfig) -> PaymentStore:
        database = await Database.open(config.database_url, MIGRATIONS, name="payment")
        try:
            gateway = await SimulatedGateway.open(config.env)
        except BaseException:
            await database.close()
            raise
        return cls(database, gateway)

    async def close(self) -> None:
        await self.gateway.close()
        await super().close()

    async def get(self, payment_id: str) -> Payment:
        return await self.database.read(_existing_payment, payment_id)

    async def payment_by_request(self, request_id: str) -> Payment | None:
        """The payment a charge with this request_id made, whatever the request was."""

        async def find(connection):
            row = await fetch_one(
                connection, "SELECT id FROM payments WHERE request_id = %s", (request_id,)
            )
            return await _payment(connection, row[0]) if row else None

        return await self.database.read(find)

    async def refund_by_request(self, request_id: str) -> tuple[Refund, Payment] | None:
        """The refund (PENDING or done) asked for under this request_id, with its payment."""

        async def find(connection):
            row = await fetch_one(
                connection, "SELECT id FROM refunds WHERE request_id = %s", (request_id,)
            )
            if row is None:
                return None
            refund = await _refund(connection, row[0])
            return refund, await _payment(connection, refund.payment_id)

        return await self.database.read(find)

    async def pending_refunds(self, older_than_us: int, limit: int = 100) -> list[tuple]:
        """(refund id, request_id, fingerprint) of refunds held for longer than given,
        oldest first."""
        return await self.database.read(
            fetch_all,
            "SELECT id, request_id, fingerprint FROM refunds WHERE state = %s AND create_us <= %s"
            " ORDER BY create_us LIMIT %s",
            (PENDING, _now_us() - older_than_us, limit),
        )

    async def payment_for_request(self, request_id: str, fingerprint: str) -> Payment | None:
        """The payment an earlier charge with this request_id made, if any."""
        # Usually there is none: one query says so, and only a repeat reads the
        # payment with its refunds (on one snapshot).
        if await self.database.statement(_by_request, "payments", request_id, fingerprint):
            return await self.database.read(self._earlier, request_id, fingerprint)
        return None

    @staticmethod
    async def _earlier(connection, request_id: str, fingerprint: str) -> Payment | None:
        payment_id = await _by_request(connection, "payments", request_id, fingerprint)
        return await _payment(connection, payment_id) if payment_id else None

    async def record_charge(
        self, request_id: str, fingerprint: str, charge: NewCharge, result
    ) -> Payment:
        """Record the gateway's answer; if another call recorded it first, return that one.

        One insert-if-absent statement: the UNIQUE request_id decides between racing
        callers, and the loser reads the winner's payment."""

        async def record(connection) -> Payment | None:
            row = await fetch_one(
                connection,
                "INSERT INTO payments (id, request_id, fingerprint, order_id, currency,"
                " amount_nanos, status, decline_reason, method_kind, method_brand, last4,"
                " gateway_reference, create_us) VALUES"
                " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                f" ON CONFLICT (request_id) DO NOTHING RETURNING {_PAYMENT}",
                (
                    f"pay_{uuid.uuid4().hex}",
                    request_id,
                    fingerprint,
                    charge.order_id,
                    charge.currency,
                    charge.amount_nanos,
                    CAPTURED if result.approved else DECLINED,
                    result.decline_reason,
                    charge.method_kind,
                    result.brand,
                    result.last4,
                    result.reference,
                    _now_us(),
                ),
            )
            return Payment(*row, refunds=()) if row else None

        if (payment := await self.database.statement(record)) is not None:
            return payment
        return await self.database.read(self._earlier, request_id, fingerprint)

    async def hold_refund(
        self, payment_id: str, amount_nanos: int | None, reason: str, request_id: str, print_: str
    ) -> tuple[Refund, Payment]:
        """Find or create the PENDING refund of this request, holding its amount."""
        return await self.database.write(
            _hold_refund, payment_id, amount_nanos, reason, request_id, print_
        )

    async def complete_refund(self, refund_id: str) -> tuple[Refund, Payment]:
        return await self.database.write(_complete_refund, refund_id)

    async def drop_refund(self, refund_id: str) -> None:
        """Give a PENDING refund's hold back (the gateway did not answer)."""
        await self.database.write(_drop_refund, refund_id)


async def _refund(connection, refund_id: str) -> Refund:
    row = await fetch_one(
        connection,
        "SELECT id, payment_id, amount_nanos, reason, state, create_us FROM refunds WHERE id = %s",
        (refund_id,),
    )
    if row is None:
        # Dropped by a concurrent duplicate whose gateway call failed; a retry redoes it.
        raise Unavailable("the refund was interrupted; retry with the same request_id")
    return Refund(*row)


async def _hold_refund(connection, payment_id, amount_nanos, reason, request_id, print_):
    if refund_id := await _by_request(connection, "refunds", request_id, print_):
        refund = await _refund(connection, refund_id)
        return refund, await _payment(connection, refund.payment_id)
    payment = await _existing_payment(connection, payment_id)
    if payment.status == DECLINED:
        raise FailedPrecondition(
            "PAYMENT_NOT_CAPTURED",
            f"payment {payment_id} was declined; there is nothing to refund",
            metadata={"payment_id": payment_id},
        )
    (pending,) = await fetch_one(
        connection, "SELECT pending_nanos FROM payments WHERE id = %s", (payment_id,)
    )
    refundable = payment.amount_nanos - payment.refunded_nanos - pending
    amount = refundable if amount_nanos is None else amount_nanos
    if amount <= 0 or amount > refundable:
        raise FailedPrecondition(
            "REFUND_EXCEEDS_CAPTURE",
            f"payment {payment_id} has {refundable} nanos left to refund, asked for {amount}",
            metadata={"payment_id": payment_id, "refundable_nanos": str(refundable)},
        )
    refund_id = f"ref_{uuid.uuid4().hex}"
    await connection.execute(
        "INSERT INTO refunds VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (refund_id, request_id, print_, payment_id, amount, reason, PENDING, _now_us()),
    )
    await connection.execute(
        "UPDATE payments SET pending_nanos = pending_nanos + %s WHERE id = %s", (amount, payment_id)
    )
    return await _refund(connection, refund_id), await _payment(connection, payment_id)


async def _complete_refund(connection, refund_id):
    refund = await _refund(connection, refund_id)
    if refund.state == PENDING:  # completing twice (two replicas, a retry) changes nothing
        await connection.execute("UPDATE refunds SET state = %s WHERE id = %s", (DONE, refund_id))
        await connection.execute(
            "UPDATE payments SET pending_nanos = pending_nanos - %s, "
            "refunded_nanos = refunded_nanos + %s, "
            "status = CASE WHEN refunded_nanos + %s >= amount_nanos THEN %s ELSE %s END "
            "WHERE id = %s",
            (
                refund.amount_nanos,
                refund.amount_nanos,
                refund.amount_nanos,
                REFUNDED,
                PARTIALLY_REFUNDED,
                refund.payment_id,
            ),
        )
    return await _refund(connection, refund_id), await _payment(connection, refund.payment_id)


async def _drop_refund(connection, refund_id):
    row = await fetch_one(connection, "SELECT 1 FROM refunds WHERE id = %s", (refund_id,))
    refund = await _refund(connection, refund_id) if row else None
    if refund and refund.state == PENDING:
        await connection.execute("DELETE FROM refunds WHERE id = %s", (refund_id,))
        await connection.execute(
            "UPDATE payments SET pending_nanos = pending_nanos - %s WHERE id = %s",
            (refund.amount_nanos, refund.payment_id),
        )
