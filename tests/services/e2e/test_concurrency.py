"""Many shoppers, few units: the saga never sells what inventory does not have."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY
from shop.order.v1 import order_pb2

from tests.services.order.checkout import place_request

CUP = "kitchen-espresso-cup"
SHOPPERS = 24
UNITS = 5


def finished(status: str, reason: str = "") -> float:
    # The order server runs in this process: its metrics are in this registry.
    labels = {"status": status, "reason": reason}
    return REGISTRY.get_sample_value("shopmesh_orders_finished_total", labels) or 0.0


async def test_concurrent_checkouts_confirm_exactly_the_units_in_stock(shop):
    await shop.leave_available(CUP, UNITS)
    before = await shop.stock(CUP)
    counted = (
        finished("ORDER_STATUS_CONFIRMED"),
        finished("ORDER_STATUS_FAILED", "INSUFFICIENT_STOCK"),
    )
    responses = await asyncio.gather(
        *(
            shop.order.PlaceOrder(place_request((CUP, 1), customer_id=f"shopper-{n}"), timeout=30)
            for n in range(SHOPPERS)
        )
    )
    orders = [response.order for response in responses]
    confirmed = [o for o in orders if o.status == order_pb2.ORDER_STATUS_CONFIRMED]
    failed = [o for o in orders if o.status == order_pb2.ORDER_STATUS_FAILED]
    assert len(confirmed) == UNITS
    assert len(failed) == SHOPPERS - UNITS
    assert {o.failure_reason for o in failed} == {"INSUFFICIENT_STOCK"}
    assert not any(o.payment_id for o in failed)  # never charged
    assert (
        finished("ORDER_STATUS_CONFIRMED") - counted[0],
        finished("ORDER_STATUS_FAILED", "INSUFFICIENT_STOCK") - counted[1],
    ) == (UNITS, SHOPPERS - UNITS)

    after = await shop.stock(CUP)
    assert (after.available, after.reserved, after.sold - before.sold) == (0, 0, UNITS)
    async with shop.order_store() as store:
        for order in failed:
            steps = [entry.event for entry in await store.history(order.id)]
            assert "CHARGE" not in steps
