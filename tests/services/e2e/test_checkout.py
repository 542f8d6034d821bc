"""Checkout end to end: the order service's saga against real catalog, inventory and payment."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2

from services.runtime.testing import error_details

# tests/ is on sys.path (pytest's rootdir-relative package import): the order tests' helpers.
from tests.services.order.checkout import place_request

CUP = "kitchen-espresso-cup"  # 24.90 USD
KNIFE = "kitchen-chef-knife"


async def test_checkout_confirms_takes_stock_and_charges_once(shop):
    before = await shop.stock(CUP)
    order = (await shop.order.PlaceOrder(place_request((CUP, 2), (KNIFE, 1)))).order

    assert order.status == order_pb2.ORDER_STATUS_CONFIRMED, order.failure_message
    cup = next(line for line in order.lines if line.product_id == CUP)
    assert (cup.unit_price.units, cup.unit_price.nanos) == (24, 900_000_000)
    assert (cup.line_total.units, cup.line_total.nanos) == (49, 800_000_000)
    after = await shop.stock(CUP)
    assert (after.sold - before.sold, after.available, after.reserved) == (
        2,
        before.available - 2,
        0,
    )
    payment = await shop.payment_of(order)
    assert payment.status == payment_pb2.PAYMENT_STATUS_CAPTURED
    assert payment.amount == order.total and payment.order_id == order.id
    assert (await shop.order.GetOrder(order_pb2.GetOrderRequest(id=order.id))).order == order


async def test_repeated_checkout_returns_the_same_order_and_charges_once(shop):
    request = place_request((CUP, 1))
    before = await shop.stock(CUP)
    first = (await shop.order.PlaceOrder(request)).order
    # The same request again, and a burst of it at once: all the same order.
    again = await asyncio.gather(*(shop.order.PlaceOrder(request) for _ in range(5)))
    assert {response.order.id for response in again} == {first.id}
    assert all(response.order == first for response in again)
    after = await shop.stock(CUP)
    assert after.sold - before.sold == 1
    payment = await shop.payment_of(first)
    assert payment.status == payment_pb2.PAYMENT_STATUS_CAPTURED
    async with shop.order_store() as store:
        charges = [e for e in await store.history(first.id) if e.event == "COMMIT"]
    assert len(charges) == 1  # the saga ran its charge step once


async def test_request_id_reused_for_another_cart_is_refused(shop):
    request = place_request((CUP, 1))
    await shop.order.PlaceOrder(request)
    other = place_request((CUP, 3))
    other.request_id = request.request_id
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.order.PlaceOrder(other)
    details = error_details(caught.value)
    assert (details.code, details.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "REQUEST_ID_REUSED",
    )


async def test_more_than_the_stock_fails_without_hold_or_charge(shop):
    await shop.leave_available(CUP, 3)
    order = (await shop.order.PlaceOrder(place_request((CUP, 4)))).order
    assert order.status == order_pb2.ORDER_STATUS_FAILED
    assert order.failure_reason == "INSUFFICIENT_STOCK"
    assert not order.payment_id and not order.reservation_id
    level = await shop.stock(CUP)
    assert (level.available, level.reserved) == (3, 0)


async def test_declined_payment_fails_and_gives_the_stock_back(shop):
    before = await shop.stock(CUP)
    request = place_request((CUP, 2), token="tok_decline_insufficient_funds")
    order = (await shop.order.PlaceOrder(request)).order
    assert order.status == order_pb2.ORDER_STATUS_FAILED
    assert order.failure_reason == "PAYMENT_DECLINED"
    assert "INSUFFICIENT_FUNDS" in order.failure_message
    payment = await shop.payment_of(order)
    assert payment.status == payment_pb2.PAYMENT_STATUS_DECLINED
    after = await shop.stock(CUP)
    assert (after.available, after.reserved, after.sold) == (
        before.available,
        0,
        before.sold,
    )


async def test_unknown_product_is_not_found_and_records_no_order(shop):
    before = await shop.stock(CUP)
    request = place_request((CUP, 1), ("no-such-product", 1), customer_id="who-asks-for-nothing")
    for _ in range(2):  # a retry gets the same answer, not an order
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await shop.order.PlaceOrder(request)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        assert "no-such-product" in refused.value.details()
        assert error_details(refused.value).reason == "PRODUCT_NOT_FOUND"
    listed = await shop.order.ListOrders(
        order_pb2.ListOrdersRequest(customer_id=request.customer_id)
    )
    assert list(listed.orders) == []
    assert await shop.stock(CUP) == before


async def test_cancel_refunds_and_restocks_once(shop):
    before = await shop.stock(CUP)
    order = (await shop.order.PlaceOrder(place_request((CUP, 2)))).order
    cancel = order_pb2.CancelOrderRequest(
        id=order.id, reason="changed my mind", request_id=str(uuid.uuid4())
    )
    cancelled = (await shop.order.CancelOrder(cancel)).order
    assert cancelled.status == order_pb2.ORDER_STATUS_CANCELLED

    payment = await shop.payment_of(order)
    assert payment.status == payment_pb2.PAYMENT_STATUS_REFUNDED
    assert payment.refunded_amount == payment.amount and len(payment.refunds) == 1
    after = await shop.stock(CUP)
    assert (after.available, after.sold, after.reserved) == (before.available, before.sold, 0)

    # Cancelling again changes nothing.
    cancel.request_id = str(uuid.uuid4())
    assert (await shop.order.CancelOrder(cancel)).order == cancelled
    assert len((await shop.payment_of(order)).refunds) == 1
    assert (await shop.stock(CUP)).available == before.available


async def test_only_confirmed_orders_can_be_cancelled(shop):
    declined = place_request((CUP, 1), token="tok_decline_insufficient_funds")
    failed = (await shop.order.PlaceOrder(declined)).order
    assert failed.status == order_pb2.ORDER_STATUS_FAILED
    cancel = order_pb2.CancelOrderRequest(id=failed.id, request_id=str(uuid.uuid4()))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.order.CancelOrder(cancel)
    details = error_details(caught.value)
    assert (details.code, details.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "ORDER_NOT_CONFIRMED",
    )
    cancel.id = str(uuid.uuid4())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.order.CancelOrder(cancel)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_orders_are_listed_newest_first_a_page_at_a_time(shop):
    placed = []
    for _ in range(5):
        placed.append(
            (await shop.order.PlaceOrder(place_request((CUP, 1), customer_id="lister"))).order.id
        )
    await shop.order.PlaceOrder(place_request((CUP, 1), customer_id="someone-else"))

    seen, token = [], ""
    while True:
        page = await shop.order.ListOrders(
            order_pb2.ListOrdersRequest(customer_id="lister", page_size=2, page_token=token)
        )
        assert len(page.orders) <= 2
        seen += [order.id for order in page.orders]
        token = page.next_page_token
        if not token:
            break
    assert seen == placed[::-1]
    empty = await shop.order.ListOrders(order_pb2.ListOrdersRequest(customer_id="nobody"))
    assert list(empty.orders) == [] and not empty.next_page_token
