"""kill -9 the order service in the middle of checkouts; a restarted one finishes them all."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2

from services.runtime.testing import spawn
from tests.services.order.checkout import place_request

from .shop import upstreams

CUP = "kitchen-espresso-cup"
FINISH_WITHIN = 20.0  # seconds from restart until every order is final


async def _wait_until_paused(shop, requests, paused_steps) -> dict[str, str]:
    """customer -> order id, once every checkout's saga is stopped by the fault knob."""
    async with shop.order_store() as store:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sagas = {}
            for request in requests:
                orders = await store.list_orders(request.customer_id, None, 1)
                saga = await store.get(orders[0].id) if orders else None
                if saga is not None and saga.step in paused_steps:
                    sagas[request.customer_id] = saga.id
            if len(sagas) == len(requests):
                return sagas
            await asyncio.sleep(0.05)
    raise AssertionError("the checkouts never reached the pause")


@pytest.mark.parametrize(
    ("pause_after", "paused_steps"),
    [("charge", {"COMMIT", "RELEASE"}), ("reserve", {"CHARGE"})],
    ids=["between-charge-and-commit", "between-reserve-and-charge"],
)
async def test_killed_mid_checkout_every_order_ends_consistent(
    databases, tmp_path, pause_after, paused_steps
):
    async with upstreams(databases) as shop:
        before = await shop.stock(CUP)
        paying = [place_request((CUP, 2), customer_id=f"crash-{n}") for n in range(3)]
        declined = place_request((CUP, 1), customer_id="crash-declined", token="tok_decline_fraud")
        requests = [*paying, declined]
        knob = {"SHOPMESH_ORDER_PAUSE_AFTER": f"{pause_after}:60"}
        with spawn("order", databases, tmp_path, shop.order_env(**knob)) as doomed:
            stub = shop.connect("order", doomed.port)
            calls = [asyncio.ensure_future(stub.PlaceOrder(r, timeout=60)) for r in requests]
            ids = await _wait_until_paused(shop, requests, paused_steps)
            doomed.process.kill()  # SIGKILL: no drain, no cleanup
            doomed.process.wait()
            for call in calls:
                with pytest.raises(grpc.aio.AioRpcError):
                    await call

        held = await shop.stock(CUP)
        assert held.reserved == 2 * len(paying) + 1  # every saga held stock when it died

        restarted_at = time.monotonic()
        with spawn("order", databases, tmp_path, shop.order_env()) as restarted:
            stub = shop.connect("order", restarted.port)
            # The shoppers retry: same request ids, same orders, now final.
            retried = await asyncio.gather(
                *(stub.PlaceOrder(r, timeout=FINISH_WITHIN) for r in requests)
            )
        assert time.monotonic() - restarted_at < FINISH_WITHIN + 15

        orders = {
            r.customer_id: response.order for r, response in zip(requests, retried, strict=True)
        }
        assert {c: o.id for c, o in orders.items()} == ids
        for request in paying:
            order = orders[request.customer_id]
            assert order.status == order_pb2.ORDER_STATUS_CONFIRMED, order.failure_message
            payment = await shop.payment_of(order)
            assert payment.status == payment_pb2.PAYMENT_STATUS_CAPTURED
            assert payment.amount == order.total and not payment.refunds
        failed = orders[declined.customer_id]
        assert (failed.status, failed.failure_reason) == (
            order_pb2.ORDER_STATUS_FAILED,
            "PAYMENT_DECLINED",
        )

        after = await shop.stock(CUP)
        assert after.reserved == 0
        assert after.sold - before.sold == 2 * len(paying)
        assert after.available == before.available - 2 * len(paying)

        async with shop.order_store() as store:
            for order_id in ids.values():
                history = await store.history(order_id)
                dead, restarted_owner = history[0].owner, history[-1].owner
                assert dead != restarted_owner  # the restarted process finished it
                done = {e.event for e in history if e.owner == dead}
                resumed = [e.event for e in history if e.owner == restarted_owner]
                # It took the saga over once and went on from where it stopped.
                assert resumed[0] == "CLAIM" and resumed.count("CLAIM") == 1
                assert not set(resumed) & done, (done, resumed)
