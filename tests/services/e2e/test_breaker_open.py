"""Checkouts that meet an open payment breaker fail at once: no charge was sent, so there
is nothing to refund and nothing to wait for, and the stock is not kept."""

from __future__ import annotations

import time

from shop.order.v1 import order_pb2

from mesh import breakers
from tests.services.order.checkout import place_request

CUP = "kitchen-espresso-cup"


async def _checkout_with_open_payment_breaker(shop):
    before = await shop.stock(CUP)
    breakers.breaker_for("payment", reset_timeout=60).open()  # the order service's breaker
    started = time.monotonic()
    order = (await shop.order.PlaceOrder(place_request((CUP, 2)), timeout=10)).order
    elapsed = time.monotonic() - started
    after = await shop.stock(CUP)
    assert order.status == order_pb2.ORDER_STATUS_FAILED
    assert order.failure_reason == "PAYMENT_UNAVAILABLE"
    assert "circuit breaker 'payment' is open" in order.failure_message
    assert not order.payment_id
    assert (after.available, after.reserved, after.sold) == (before.available, 0, before.sold)
    # Final in one pass: no refund to wait for (a generous bound for a loaded machine).
    assert elapsed < 2.0
    return order


async def test_no_stock_is_held_for_a_charge_the_open_breaker_would_refuse(shop):
    order = await _checkout_with_open_payment_breaker(shop)
    assert not order.reservation_id


async def test_a_charge_refused_by_the_breaker_is_known_not_to_need_a_refund(shop, monkeypatch):
    # The breaker opens between reserving and charging (here: the pre-check is blind).
    monkeypatch.setattr(breakers, "rejecting", lambda upstream: False)
    order = await _checkout_with_open_payment_breaker(shop)
    assert order.reservation_id  # stock was held, then released
