"""The shop's safety invariants, checked against a ledger read after a chaos run.

Every scenario ends here. An empty list of violations means:

- every order is final (CONFIRMED, FAILED or CANCELLED, no saga step in flight);
- no oversell, per SKU: reserved + sold <= units received, on_hand + sold = units
  received, reserved and sold equal what the reservations say, and the stock
  levels the inventory service reports through the mesh agree (on_hand =
  available + reserved);
- no double charge: at most one capture per order, refunds never exceed the
  capture, no refund left half done, and every capture the gateway approved is
  recorded as a payment (no money taken without a record);
- a CONFIRMED order has exactly one captured, unrefunded payment of its total
  and a COMMITTED reservation of exactly its units;
- a FAILED order has a reason, no net charge and no held or sold stock; a
  CANCELLED one has no net charge and its stock back;
- nothing is held or charged for an order that does not exist;
- where money really moved, by the payment gateway's own ledger: per order,
  captured minus refunded is the order's total for a CONFIRMED order and 0 for a
  FAILED or CANCELLED one, refunds never exceed captures, and no refund names a
  capture the gateway does not have.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from shopmesh.chaos.ledger import Ledger, Order
from shopmesh.local.ops import StockLevel

__all__ = ["StockLevel", "Violation", "check"]

HOLDING = frozenset({"ACTIVE", "COMMITTED"})


@dataclass(frozen=True)
class Violation:
    invariant: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.subject}: {self.detail}"


def _sku_problems(stock, received: int, held: int, sold: int) -> list[str]:
    problems = []
    if stock.reserved + stock.sold > received:
        problems.append(f"reserved {stock.reserved} + sold {stock.sold} > received {received}")
    if stock.on_hand + stock.sold != received:
        problems.append(f"on_hand {stock.on_hand} + sold {stock.sold} != received {received}")
    if stock.reserved != held:
        problems.append(f"reserved {stock.reserved} but active reservations hold {held}")
    if stock.sold != sold:
        problems.append(f"sold {stock.sold} but committed reservations hold {sold}")
    return problems


def _stock(ledger: Ledger, received: Mapping[str, int]) -> list[Violation]:
    held: Counter = Counter()
    sold: Counter = Counter()
    for reservation in ledger.reservations.values():
        if reservation.state == "ACTIVE":
            held.update(reservation.units)
        elif reservation.state == "COMMITTED":
            sold.update(reservation.units)
    found = []
    for sku, stock in sorted(ledger.stock.items()):
        if sku not in received:
            problems = ["the inventory counts a SKU nobody received"]
        else:
            problems = _sku_problems(stock, received[sku], held[sku], sold[sku])
        found += [Violation("no-oversell", f"sku {sku}", p) for p in problems]
    for sku in sorted(set(received) - set(ledger.stock)):
        found.append(Violation("no-oversell", f"sku {sku}", "received but missing from stock"))
    return found


def _levels(ledger: Ledger, levels: Mapping[str, StockLevel]) -> list[Violation]:
    found = []
    for sku, level in sorted(levels.items()):
        subject = f"sku {sku} (BatchGetStock)"
        if level.on_hand != level.available + level.reserved:
            found.append(
                Violation(
                    "no-oversell",
                    subject,
                    f"on_hand {level.on_hand} != available {level.available}"
                    f" + reserved {level.reserved}",
                )
            )
        stock = ledger.stock.get(sku)
        if stock and (level.on_hand, level.reserved, level.sold) != (
            stock.on_hand,
            stock.reserved,
            stock.sold,
        ):
            found.append(Violation("no-oversell", subject, f"reports {level}, ledger has {stock}"))
    return found


def _payments(ledger: Ledger) -> list[Violation]:
    found = []
    captures = Counter(p.order_id for p in ledger.payments.values() if p.captured)
    for order_id, count in sorted(captures.items()):
        if count > 1:
            found.append(Violation("no-double-charge", f"order {order_id}", f"{count} captures"))
    for payment in ledger.payments.values():
        subject = f"payment {payment.id} (order {payment.order_id})"
        if payment.refunded_nanos > payment.amount_nanos:
            found.append(Violation("no-double-charge", subject, "refunded more than captured"))
        if payment.refunds_done_nanos != payment.refunded_nanos:
            found.append(
                Violation(
                    "no-double-charge",
                    subject,
                    f"refund records add up to {payment.refunds_done_nanos} nanos,"
                    f" the payment says {payment.refunded_nanos}",
                )
            )
        if payment.pending_nanos:
            found.append(Violation("no-double-charge", subject, "a refund is still pending"))
    recorded = {p.request_id for p in ledger.payments.values() if p.captured}
    for key in sorted(ledger.gateway_captures):
        if key.removeprefix("charge:") not in recorded:
            found.append(
                Violation(
                    "no-double-charge", f"gateway {key}", "captured but no payment records it"
                )
            )
    return found


def _net_charge(ledger: Ledger, order_id: str) -> int:
    return sum(p.net_nanos for p in ledger.payments_of(order_id))


def _order(ledger: Ledger, order: Order) -> list[Violation]:
    subject = f"order {order.id}"
    if not order.final:
        return [Violation("orders-final", subject, f"{order.status}, next step {order.step}")]
    found = []
    reservations = ledger.reservations_of(order.id)
    holding = [r for r in reservations if r.state in HOLDING]
    net = _net_charge(ledger, order.id)
    if order.status == "CONFIRMED":
        captured = [p for p in ledger.payments_of(order.id) if p.captured]
        if len(captured) != 1 or captured[0].id != order.payment_id:
            found.append(Violation("confirmed-paid", subject, f"{len(captured)} captured payments"))
        if net != order.total_nanos:
            found.append(
                Violation(
                    "confirmed-paid", subject, f"net charge {net} != total {order.total_nanos}"
                )
            )
        committed = [r for r in reservations if r.state == "COMMITTED"]
        if len(committed) != 1 or committed[0].units != order.units:
            found.append(
                Violation(
                    "confirmed-stock",
                    subject,
                    f"committed {[r.units for r in committed]}, ordered {order.units}",
                )
            )
    else:  # FAILED or CANCELLED: nothing kept
        rule = "failed-clean" if order.status == "FAILED" else "cancelled-clean"
        if net:
            found.append(Violation(rule, subject, f"net charge {net} nanos"))
        if holding:
            states = ", ".join(r.state for r in holding)
            found.append(Violation(rule, subject, f"stock still {states}"))
        if order.status == "FAILED" and not order.failure_reason:
            found.append(Violation(rule, subject, "FAILED without a failure_reason"))
    return found


def _orphans(ledger: Ledger) -> list[Violation]:
    found = []
    for reservation in ledger.reservations.values():
        if reservation.order_id not in ledger.orders and reservation.state in HOLDING:
            found.append(
                Violation(
                    "no-orphans",
                    f"reservation {reservation.id}",
                    f"{reservation.state} for unknown order {reservation.order_id}",
                )
            )
    for payment in ledger.payments.values():
        if payment.order_id not in ledger.orders and payment.net_nanos:
            found.append(
                Violation(
                    "no-orphans",
                    f"payment {payment.id}",
                    f"charged for unknown order {payment.order_id}",
                )
            )
    return found


def _gateway(ledger: Ledger) -> list[Violation]:
    found = [
        Violation("gateway-money", f"gateway {key}", "refund of a capture it has no record of")
        for key in ledger.gateway_stray_refunds
    ]
    for order_id, (captured, refunded) in sorted(ledger.gateway_money.items()):
        subject = f"order {order_id} at the gateway"
        order = ledger.orders.get(order_id)
        if refunded > captured:
            found.append(Violation("gateway-money", subject, f"refunded {refunded} > {captured}"))
        if order is None:
            if captured - refunded:
                found.append(Violation("gateway-money", subject, "money kept for no order"))
            continue
        owed = order.total_nanos if order.status == "CONFIRMED" else 0
        if order.final and captured - refunded != owed:
            found.append(
                Violation(
                    "gateway-money",
                    subject,
                    f"{order.status}: captured {captured} - refunded {refunded} != {owed}",
                )
            )
    for order in ledger.orders.values():
        if order.final and order.status == "CONFIRMED" and order.id not in ledger.gateway_money:
            found.append(Violation("gateway-money", f"order {order.id}", "CONFIRMED, no capture"))
    return found


def check(
    ledger: Ledger,
    received: Mapping[str, int],
    levels: Mapping[str, StockLevel] | None = None,
) -> list[Violation]:
    """Every violation of the invariants above; `received` is the units each SKU got
    (seed plus restocks), `levels` what BatchGetStock reported, if it was asked."""
    found = _stock(ledger, received) + _levels(ledger, levels or {}) + _payments(ledger)
    found += _gateway(ledger)
    for order in ledger.orders.values():
        found += _order(ledger, order)
    return found + _orphans(ledger)
