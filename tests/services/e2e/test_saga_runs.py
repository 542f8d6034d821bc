"""One saga, one run at a time, also within one process (leases name processes, not runs)."""

from __future__ import annotations

import asyncio

import pytest
from shop.order.v1 import order_pb2

from services.order.model import new_saga
from services.order.orders import Orders
from services.order.store import LeaseLost
from services.runtime.testing import test_config
from tests.services.order.checkout import place_request

from .shop import upstreams


async def test_a_second_run_in_the_same_process_is_refused(databases):
    async with upstreams(databases) as shop:
        orders = await Orders.open(test_config("order", databases, shop.order_env()))
        try:
            saga, _ = await orders.store.create(
                new_saga(place_request(("kitchen-espresso-cup", 1))), orders.owner
            )
            first = asyncio.ensure_future(orders.runner.run(saga))
            await asyncio.sleep(0)  # the first run is now waiting for the catalog
            with pytest.raises(LeaseLost):
                await orders.runner.run(saga)
            finished = await first
            assert finished.order.status == order_pb2.ORDER_STATUS_CONFIRMED
            history = [entry.event for entry in await orders.store.history(saga.id)]
            assert history.count("RESERVE") == 1
        finally:
            await orders.close()
