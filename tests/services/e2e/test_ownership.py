"""A customer sees and changes only their own orders; an operator reads any (the order app
on its own, with the claims its sidecar would hand it)."""

from __future__ import annotations

import uuid

import grpc
import pytest
from shop.order.v1 import order_pb2

from services.order.access import OPERATOR_SCOPE
from services.runtime.testing import end_user_metadata, error_details

from ..order.checkout import place_request

ADA, BOB = end_user_metadata("ada"), end_user_metadata("bob")
OPERATOR = end_user_metadata("olga", scopes=[OPERATOR_SCOPE, "profile"])
CUP = "kitchen-espresso-cup"


async def _fails(call) -> tuple[grpc.StatusCode, str, str, dict]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    details = error_details(caught.value)
    return details.code, details.reason, details.message, details.metadata


async def _place(shop, who, customer_id: str = "") -> order_pb2.Order:
    request = place_request((CUP, 1), customer_id=customer_id)
    return (await shop.order.PlaceOrder(request, metadata=who, timeout=10)).order


async def test_an_order_is_the_token_subjects_and_only_theirs_to_see(shop):
    order = await _place(shop, ADA)  # no customer_id: the caller's
    assert order.customer_id == "ada" and order.status == order_pb2.ORDER_STATUS_CONFIRMED
    get = order_pb2.GetOrderRequest(id=order.id)
    assert (await shop.order.GetOrder(get, metadata=ADA)).order == order

    # Bob gets exactly what an order that does not exist gets: nothing to probe ids with.
    code, reason, message, metadata = await _fails(shop.order.GetOrder(get, metadata=BOB))
    missing_id = str(uuid.uuid4())
    missing = await _fails(
        shop.order.GetOrder(order_pb2.GetOrderRequest(id=missing_id), metadata=BOB)
    )
    assert code == grpc.StatusCode.NOT_FOUND
    assert (code, reason, message.replace(order.id, "X"), {**metadata, "id": "X"}) == (
        missing[0],
        missing[1],
        missing[2].replace(missing_id, "X"),
        {**missing[3], "id": "X"},
    )


async def test_another_customers_order_cannot_be_cancelled(shop):
    order = await _place(shop, ADA)
    cancel = order_pb2.CancelOrderRequest(id=order.id, request_id=str(uuid.uuid4()))
    code, *_ = await _fails(shop.order.CancelOrder(cancel, metadata=BOB))
    assert code == grpc.StatusCode.NOT_FOUND
    # An operator sees it, so is told why not; only Ada may cancel it.
    code, reason, *_ = await _fails(shop.order.CancelOrder(cancel, metadata=OPERATOR))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_ORDER_OWNER")
    still = (await shop.order.GetOrder(order_pb2.GetOrderRequest(id=order.id), metadata=ADA)).order
    assert still.status == order_pb2.ORDER_STATUS_CONFIRMED
    cancelled = (await shop.order.CancelOrder(cancel, metadata=ADA)).order
    assert cancelled.status == order_pb2.ORDER_STATUS_CANCELLED


async def test_placing_an_order_for_someone_else_is_refused_and_records_nothing(shop):
    code, reason, _, metadata = await _fails(_place(shop, ADA, customer_id="bob"))
    assert (code, reason, metadata) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "CUSTOMER_MISMATCH",
        {"customer_id": "bob"},
    )
    listed = await shop.order.ListOrders(order_pb2.ListOrdersRequest(), metadata=BOB)
    assert list(listed.orders) == []
    # Naming oneself is fine: clients written before tokens send customer_id.
    assert (await _place(shop, BOB, customer_id="bob")).customer_id == "bob"


async def test_list_orders_lists_the_callers_orders_and_an_operator_anyones(shop):
    ada_orders = {(await _place(shop, ADA)).id for _ in range(2)}
    await _place(shop, BOB)
    mine = await shop.order.ListOrders(order_pb2.ListOrdersRequest(), metadata=ADA)
    assert {o.id for o in mine.orders} == ada_orders
    code, reason, *_ = await _fails(
        shop.order.ListOrders(order_pb2.ListOrdersRequest(customer_id="bob"), metadata=ADA)
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "CUSTOMER_MISMATCH")
    as_operator = await shop.order.ListOrders(
        order_pb2.ListOrdersRequest(customer_id="ada"), metadata=OPERATOR
    )
    assert {o.id for o in as_operator.orders} == ada_orders
    some = next(iter(ada_orders))
    read = await shop.order.GetOrder(order_pb2.GetOrderRequest(id=some), metadata=OPERATOR)
    assert read.order.customer_id == "ada"


async def test_a_scope_of_another_name_grants_nothing(shop):
    order = await _place(shop, ADA)
    almost = end_user_metadata("mallory", scopes=[f"{OPERATOR_SCOPE}.read", "shop"])
    code, *_ = await _fails(
        shop.order.GetOrder(order_pb2.GetOrderRequest(id=order.id), metadata=almost)
    )
    assert code == grpc.StatusCode.NOT_FOUND


async def test_reusing_another_customers_request_id_does_not_reveal_their_order(shop):
    request = place_request((CUP, 1), customer_id="")
    placed = (await shop.order.PlaceOrder(request, metadata=ADA)).order
    code, reason, message, metadata = await _fails(shop.order.PlaceOrder(request, metadata=BOB))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REQUEST_ID_REUSED")
    assert placed.id not in message and placed.id not in metadata.values()
    # Ada's retry is answered from the dedupe, as before.
    assert (await shop.order.PlaceOrder(request, metadata=ADA)).order == placed
