"""The invariants checker on hand-made ledgers: silent on a clean one, and naming each
kind of violation when one is planted."""

from __future__ import annotations

import dataclasses

import pytest

from shopmesh.chaos.invariants import check
from shopmesh.chaos.ledger import Ledger, Order, Payment, Reservation, Stock
from shopmesh.local.ops import StockLevel

RECEIVED = {"A": 10, "B": 5}


def _order(order_id, status="CONFIRMED", units=None, **fields) -> Order:
    values = dict(
        id=order_id,
        customer_id="ada",
        status=status,
        step=None,
        failure_reason="" if status != "FAILED" else "INSUFFICIENT_STOCK",
        total_nanos=3_000_000_000,
        units=units or {"A": 2, "B": 1},
        payment_id=f"pay-{order_id}" if status != "FAILED" else "",
        reservation_id=f"res-{order_id}",
    )
    return Order(**{**values, **fields})


def _payment(order_id, status="CAPTURED", refunded=0, **fields) -> Payment:
    values = dict(
        id=f"pay-{order_id}",
        order_id=order_id,
        request_id=f"charge-{order_id}",
        status=status,
        amount_nanos=3_000_000_000,
        refunded_nanos=refunded,
        pending_nanos=0,
        refunds_done_nanos=refunded,
    )
    return Payment(**{**values, **fields})


def clean() -> Ledger:
    """One confirmed order (A x2, B x1, paid), one failed (nothing held), one cancelled."""
    orders = {
        "o1": _order("o1"),
        "o2": _order("o2", "FAILED", reservation_id=""),
        "o3": _order("o3", "CANCELLED", units={"A": 1}),
    }
    reservations = {
        "res-o1": Reservation("res-o1", "o1", "COMMITTED", {"A": 2, "B": 1}),
        "res-o3": Reservation("res-o3", "o3", "RELEASED", {"A": 1}),
    }
    payments = {
        "pay-o1": _payment("o1"),
        "pay-o3": _payment("o3", "REFUNDED", refunded=3_000_000_000),
    }
    stock = {"A": Stock("A", 8, 0, 2), "B": Stock("B", 4, 0, 1)}
    captures = frozenset({"charge:charge-o1", "charge:charge-o3"})
    # The gateway's own ledger: o1 paid, o3 paid and refunded in full.
    money = {"o1": (3_000_000_000, 0), "o3": (3_000_000_000, 3_000_000_000)}
    return Ledger(orders, reservations, stock, payments, captures, money)


def levels(ledger: Ledger) -> dict[str, StockLevel]:
    return {
        s.sku: StockLevel(s.sku, s.on_hand, s.reserved, s.on_hand - s.reserved, s.sold)
        for s in ledger.stock.values()
    }


def test_a_clean_ledger_has_no_violations():
    ledger = clean()
    assert check(ledger, RECEIVED, levels(ledger)) == []


def _with(ledger: Ledger, **parts) -> Ledger:
    """The ledger with entries added or replaced (dict parts) or swapped (other parts)."""
    merged = {
        name: {**getattr(ledger, name), **value} if isinstance(value, dict) else value
        for name, value in parts.items()
    }
    return dataclasses.replace(ledger, **merged)


CAPTURES = clean().gateway_captures
MONEY = clean().gateway_money
A2B1 = {"A": 2, "B": 1}

# name -> (what is planted in the clean ledger, the invariant that must name it)
PLANTED = {
    "oversold": (
        dict(
            stock={"B": Stock("B", 4, 5, 1)},  # 5 held + 1 sold of 5 received
            reservations={"r9": Reservation("r9", "o1", "ACTIVE", {"B": 5})},
        ),
        "no-oversell",
    ),
    "units from nowhere": (dict(stock={"A": Stock("A", 9, 0, 2)}), "no-oversell"),
    "sold disagrees with reservations": (dict(stock={"A": Stock("A", 7, 0, 3)}), "no-oversell"),
    "second capture": (
        dict(payments={"p2": _payment("o1", id="p2", request_id="again")}),
        "no-double-charge",
    ),
    "refund above capture": (
        dict(payments={"pay-o3": _payment("o3", "REFUNDED", refunded=4_000_000_000)}),
        "no-double-charge",
    ),
    "refund left pending": (
        dict(payments={"pay-o3": _payment("o3", "REFUNDED", 3_000_000_000, pending_nanos=1)}),
        "no-double-charge",
    ),
    "capture without a payment record": (
        dict(gateway_captures=CAPTURES | {"charge:lost"}),
        "no-double-charge",
    ),
    "gateway: a failed order's capture never refunded": (
        dict(gateway_money={**MONEY, "o2": (3_000_000_000, 0)}),
        "gateway-money",
    ),
    "gateway: a confirmed order refunded in part": (
        dict(gateway_money={**MONEY, "o1": (3_000_000_000, 1_000_000_000)}),
        "gateway-money",
    ),
    "gateway: refunds above the capture": (
        dict(gateway_money={**MONEY, "o3": (3_000_000_000, 6_000_000_000)}),
        "gateway-money",
    ),
    "gateway: a confirmed order never captured": (
        dict(gateway_money={**MONEY, "o1": (0, 0)}),
        "gateway-money",
    ),
    "gateway: a refund of a capture it has no record of": (
        dict(gateway_stray_refunds=("refund:stray",)),
        "gateway-money",
    ),
    "gateway: money kept for no order": (
        dict(gateway_money={**MONEY, "ghost": (1_000_000_000, 0)}),
        "gateway-money",
    ),
    "order not final": (
        dict(orders={"o1": _order("o1", "PENDING", step="COMMIT")}),
        "orders-final",
    ),
    "confirmed, stock not committed": (
        dict(reservations={"res-o1": Reservation("res-o1", "o1", "RELEASED", A2B1)}),
        "confirmed-stock",
    ),
    "confirmed, unpaid": (dict(payments={"pay-o1": _payment("o1", "DECLINED")}), "confirmed-paid"),
    "failed, still charged": (
        dict(payments={"pay-o2": _payment("o2")}, gateway_captures=CAPTURES | {"charge:charge-o2"}),
        "failed-clean",
    ),
    "failed, stock held": (
        dict(
            reservations={"r2": Reservation("r2", "o2", "ACTIVE", {"A": 1})},
            stock={"A": Stock("A", 8, 1, 2)},
        ),
        "failed-clean",
    ),
    "failed without a reason": (
        dict(orders={"o2": _order("o2", "FAILED", failure_reason="")}),
        "failed-clean",
    ),
    "cancelled, not refunded": (dict(payments={"pay-o3": _payment("o3")}), "cancelled-clean"),
    "stock sold for no order": (
        dict(
            reservations={"r7": Reservation("r7", "ghost", "COMMITTED", {"A": 1})},
            stock={"A": Stock("A", 7, 0, 3)},
        ),
        "no-orphans",
    ),
}


@pytest.mark.parametrize("name", PLANTED)
def test_a_planted_violation_is_named(name):
    parts, invariant = PLANTED[name]
    ledger = _with(clean(), **parts)
    found = check(ledger, RECEIVED, levels(ledger))
    assert invariant in {v.invariant for v in found}, [str(v) for v in found]


def test_stock_levels_reported_through_the_mesh_must_agree_with_the_ledger():
    ledger = clean()
    reported = levels(ledger)
    reported["A"] = StockLevel("A", 8, 0, 7, 2)  # available + reserved != on_hand
    reported["B"] = StockLevel("B", 5, 0, 5, 1)  # not what the ledger says
    found = check(ledger, RECEIVED, reported)
    assert {v.subject for v in found} == {"sku A (BatchGetStock)", "sku B (BatchGetStock)"}
