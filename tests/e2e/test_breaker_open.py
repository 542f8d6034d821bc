"""A checkout that meets an open payment breaker fails at once: the charge was never sent,
so there is nothing to refund and nothing to wait for."""

from __future__ import annotations

import time

from order.checkout import place_request
from shop.order.v1 import order_pb2

from mesh import breakers

CUP = "kitchen-espresso-cup"


async def test_open_payment_breaker_fails_the_checkout_at_once_with_stock_back(shop):
    before = await shop.stock(CUP)
    breakers.breaker_for("payment", reset_timeout=60).open()  # the order service's breaker
    started = time.monotonic()
    order = (await shop.order.PlaceOrder(place_request((CUP, 2)), timeout=10)).order
    elapsed = time.monotonic() - started

    assert order.status == order_pb2.ORDER_STATUS_FAILED
    assert order.failure_reason == "PAYMENT_UNAVAILABLE"
    assert "circuit breaker 'payment' is open" in order.failure_message
    assert not order.payment_id
    after = await shop.stock(CUP)
    assert (after.available, after.reserved, after.sold) == (
        before.available,
        0,
        before.sold,
    )
    # Final in one pass: no refund to wait for (generous bound for a loaded machine).
    assert elapsed < 2.0
