"""What the services have written down, read from their databases, read-only.

The contracts expose no listing of payments per order, of reservations, or of
the gateway's captures (nor should they: shoppers and the order service never
need one), yet "at most one capture per order" and "no orphaned hold" can only
be checked against the whole ledger. So the checker reads the services'
databases directly, in sessions that PostgreSQL keeps read-only: it can never
change what it checks. Stock levels are also read through the mesh with the
`ops` identity (see shopmesh/local/ops.py) and compared with this ledger.

Each database is read inside one REPEATABLE READ transaction, so each service's
part is a consistent snapshot; the parts are taken one after the other (orders
first), which is exact once the shop is quiet (the checker waits for every order
to be final first) and never shows an order ahead of what its upstreams recorded.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
from shop.inventory.v1 import inventory_pb2
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2

from services.runtime.money import to_nanos

__all__ = [
    "Ledger",
    "LedgerDatabases",
    "Order",
    "Payment",
    "Reservation",
    "Stock",
    "read",
]


def _name(enum, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix)


@dataclass(frozen=True)
class Order:
    id: str
    customer_id: str
    status: str  # CONFIRMED, FAILED, CANCELLED, PENDING
    step: str | None  # the saga's next action; None when nothing is in flight
    failure_reason: str
    total_nanos: int
    units: dict[str, int]  # sku -> quantity ordered
    payment_id: str
    reservation_id: str

    @property
    def final(self) -> bool:
        return self.step is None and self.status in {"CONFIRMED", "FAILED", "CANCELLED"}


@dataclass(frozen=True)
class Reservation:
    id: str
    order_id: str
    state: str  # ACTIVE, COMMITTED, RELEASED, EXPIRED
    units: dict[str, int]


@dataclass(frozen=True)
class Stock:
    sku: str
    on_hand: int
    reserved: int
    sold: int


@dataclass(frozen=True)
class Payment:
    id: str
    order_id: str
    request_id: str
    status: str  # CAPTURED, DECLINED, PARTIALLY_REFUNDED, REFUNDED
    amount_nanos: int
    refunded_nanos: int
    pending_nanos: int
    refunds_done_nanos: int  # the sum of its completed refund records

    @property
    def captured(self) -> bool:
        return self.status != "DECLINED"

    @property
    def net_nanos(self) -> int:
        return self.amount_nanos - self.refunded_nanos if self.captured else 0


@dataclass(frozen=True)
class Ledger:
    orders: dict[str, Order]
    reservations: dict[str, Reservation]
    stock: dict[str, Stock]
    payments: dict[str, Payment]
    # Idempotency keys of the charges the gateway approved (the money that moved).
    gateway_captures: frozenset[str]
    # What the gateway's own ledger says moved, per order id: (captured, refunded)
    # nanos. A refund counts for the order of the capture it names.
    gateway_money: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Refunds the gateway made against a capture it has no record of.
    gateway_stray_refunds: tuple[str, ...] = ()

    def reservations_of(self, order_id: str) -> list[Reservation]:
        return [r for r in self.reservations.values() if r.order_id == order_id]

    def payments_of(self, order_id: str) -> list[Payment]:
        return [p for p in self.payments.values() if p.order_id == order_id]

    def order_statuses(self) -> Counter:
        return Counter("IN FLIGHT" if not o.final else o.status for o in self.orders.values())


@dataclass(frozen=True)
class LedgerDatabases:
    """Connection strings of the databases the checker reads (as a superuser)."""

    order: str
    inventory: str
    payment: str
    gateway: str


@contextlib.contextmanager
def _snapshot(url: str) -> Iterator[psycopg.Connection]:
    # Read-only at the session level: even a mistaken statement cannot write.
    options = "-c default_transaction_read_only=on"
    with psycopg.connect(url, options=options, connect_timeout=10) as connection:
        connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield connection


def _units(pairs) -> dict[str, int]:
    units: Counter = Counter()
    for sku, quantity in pairs:
        units[sku] += quantity
    return dict(units)


def read_orders(url: str) -> dict[str, Order]:
    orders = {}
    with _snapshot(url) as db:
        for step, failure_reason, blob in db.execute(
            "SELECT step, failure_reason, order_pb FROM orders"
        ):
            order = order_pb2.Order.FromString(blob)
            orders[order.id] = Order(
                id=order.id,
                customer_id=order.customer_id,
                status=_name(order_pb2.OrderStatus, order.status, "ORDER_STATUS_"),
                step=step,
                failure_reason=order.failure_reason or failure_reason,
                total_nanos=to_nanos(order.total),
                units=_units((line.sku, line.quantity) for line in order.lines),
                payment_id=order.payment_id,
                reservation_id=order.reservation_id,
            )
    return orders


def _read_inventory(url: str) -> tuple[dict[str, Reservation], dict[str, Stock]]:
    states = inventory_pb2.ReservationState
    with _snapshot(url) as db:
        items: dict[str, list] = {}
        for reservation_id, sku, quantity in db.execute(
            "SELECT reservation_id, sku, quantity FROM reservation_items"
        ):
            items.setdefault(reservation_id, []).append((sku, quantity))
        reservations = {
            rid: Reservation(
                rid,
                order_id,
                _name(states, state, "RESERVATION_STATE_"),
                _units(items.get(rid, ())),
            )
            for rid, order_id, state in db.execute("SELECT id, order_id, state FROM reservations")
        }
        stock = {
            row[0]: Stock(*row)
            for row in db.execute("SELECT sku, on_hand, reserved, sold FROM stock")
        }
    return reservations, stock


def _read_payments(url: str) -> dict[str, Payment]:
    with _snapshot(url) as db:
        done = Counter()
        for payment_id, amount in db.execute(
            "SELECT payment_id, amount_nanos FROM refunds WHERE state = 'done'"
        ):
            done[payment_id] += amount
        return {
            pid: Payment(
                id=pid,
                order_id=order_id,
                request_id=request_id,
                status=_name(payment_pb2.PaymentStatus, status, "PAYMENT_STATUS_"),
                amount_nanos=amount,
                refunded_nanos=refunded,
                pending_nanos=pending,
                refunds_done_nanos=done[pid],
            )
            for pid, order_id, request_id, status, amount, refunded, pending in db.execute(
                "SELECT id, order_id, request_id, status, amount_nanos, refunded_nanos,"
                " pending_nanos FROM payments"
            )
        }


@dataclass(frozen=True)
class _Gateway:
    captures: frozenset[str]
    money: dict[str, tuple[int, int]]
    stray_refunds: tuple[str, ...]


def _read_gateway(url: str) -> _Gateway:
    with _snapshot(url) as db:
        rows = db.execute(
            "SELECT idempotency_key, kind, (result->>'approved')::boolean,"
            " result->>'reference', amount_nanos, metadata FROM gateway_operations"
        ).fetchall()
    captures, order_of_reference = set(), {}
    captured, refunded = Counter(), Counter()
    for key, kind, approved, reference, amount, metadata in rows:
        if kind == "charge" and approved:
            captures.add(key)
            order_of_reference[reference] = metadata.get("order_id", "")
            captured[metadata.get("order_id", "")] += amount
    stray = []
    for key, kind, approved, _, amount, metadata in rows:
        if kind == "refund" and approved:
            order_id = order_of_reference.get(metadata.get("charge_reference"))
            if order_id is None:
                stray.append(key)
            else:
                refunded[order_id] += amount
    money = {o: (captured[o], refunded[o]) for o in set(captured) | set(refunded)}
    return _Gateway(frozenset(captures), money, tuple(sorted(stray)))


def read(files: LedgerDatabases) -> Ledger:
    # Orders first: a saga writes its next step only after the upstream action is
    # done, so anything an order's step says has happened is already in the
    # inventory and payment databases when those are read after it.
    orders = read_orders(files.order)
    reservations, stock = _read_inventory(files.inventory)
    gateway = _read_gateway(files.gateway)
    return Ledger(
        orders=orders,
        reservations=reservations,
        stock=stock,
        payments=_read_payments(files.payment),
        gateway_captures=gateway.captures,
        gateway_money=gateway.money,
        gateway_stray_refunds=gateway.stray_refunds,
    )
