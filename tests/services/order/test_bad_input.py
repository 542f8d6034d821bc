"""Every input rule of OrderService: INVALID_ARGUMENT naming the field, nothing written."""

from __future__ import annotations

import grpc
import pytest
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2

from mesh import contracts
from services.runtime.paging import encode_page_token
from services.runtime.testing import error_details
from tests.services.e2e.shop import ActsForTheNamedCustomer

from ..rows import query
from .checkout import place_request


def _place(change):
    def build():
        request = place_request(("a", 1), ("b", 2))
        change(request)
        return "PlaceOrder", request

    return build


def _set(path: str, value):
    def change(request):
        *parents, name = path.split(".")
        target = request
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)

    return change


def _wallet(provider: int, token: str):
    def change(request):
        request.payment_method.CopyFrom(
            payment_pb2.PaymentMethod(
                wallet=payment_pb2.WalletToken(provider=provider, token=token)
            )
        )

    return change


PLACE_CASES = {
    # (An empty customer_id means the caller; the stub acts for the customer named.)
    "customer_id too long": _set("customer_id", "c" * 129),
    "items": lambda r: r.ClearField("items"),
    "items too many": lambda r: r.items.extend(
        order_pb2.OrderItem(product_id=f"p{n}", quantity=1) for n in range(49)
    ),
    "items[0].product_id": lambda r: setattr(r.items[0], "product_id", " "),
    "items[0].quantity zero": lambda r: setattr(r.items[0], "quantity", 0),
    "items[0].quantity negative": lambda r: setattr(r.items[0], "quantity", -3),
    "items[1].quantity too many": lambda r: setattr(r.items[1], "quantity", 101),
    "items[1]": lambda r: setattr(r.items[1], "product_id", "a"),
    "shipping_address": lambda r: r.ClearField("shipping_address"),
    "shipping_address.region_code": _set("shipping_address.region_code", "usa"),
    "shipping_address.address_lines": lambda r: r.shipping_address.ClearField("address_lines"),
    "shipping_address.address_lines[0]": lambda r: r.shipping_address.address_lines.__setitem__(
        0, ""
    ),
    "shipping_address.recipients": lambda r: r.shipping_address.ClearField("recipients"),
    "shipping_address.recipients[1] blank": lambda r: r.shipping_address.recipients.append(" "),
    "shipping_address.address_lines too many": lambda r: r.shipping_address.address_lines.extend(
        f"{n} Side St" for n in range(5)
    ),
    "shipping_address.postal_code too long": _set("shipping_address.postal_code", "9" * 101),
    "shipping_address.locality too long": _set("shipping_address.locality", "l" * 101),
    "shipping_address.administrative_area too long": _set(
        "shipping_address.administrative_area", "a" * 101
    ),
    "shipping_address.organization too long": _set("shipping_address.organization", "o" * 101),
    "payment_method": lambda r: r.ClearField("payment_method"),
    "payment_method.card.token": _set("payment_method.card.token", ""),
    "payment_method.card.token card number": _set("payment_method.card.token", "4111111111111111"),
    "payment_method.card.token card number grouped": _set(
        "payment_method.card.token", "4111 1111-1111 1111"
    ),
    "payment_method.card.token too long": _set("payment_method.card.token", "t" * 257),
    "payment_method.wallet.provider": _wallet(0, "wallet-token"),
    "payment_method.wallet.token": _wallet(payment_pb2.WALLET_PROVIDER_PAYPAL, ""),
    "payment_method.wallet.token card number": _wallet(
        payment_pb2.WALLET_PROVIDER_PAYPAL, "4111111111111111"
    ),
    "request_id": _set("request_id", ""),
    "request_id not a uuid": _set("request_id", "retry-1"),
    # A UUID (hyphens are ignored when parsing) that is 66 characters long: only the length fails.
    "request_id too long": _set("request_id", "-" * 30 + "6c0d7a4e-3f4b-4b8e-9a51-2f7d0e3c1a90"),
}

OTHER_CASES = {
    "GetOrder id": ("GetOrder", order_pb2.GetOrderRequest(), "id"),
    "ListOrders page_size": (
        "ListOrders",
        order_pb2.ListOrdersRequest(customer_id="c", page_size=-1),
        "page_size",
    ),
    "ListOrders page_token garbage": (
        "ListOrders",
        order_pb2.ListOrdersRequest(customer_id="c", page_token="not-a-token"),
        "page_token",
    ),
    "ListOrders page_token of another customer": (
        "ListOrders",
        order_pb2.ListOrdersRequest(
            customer_id="c",
            page_token=encode_page_token({"rpc": "ListOrders", "customer_id": "d"}, [1, "x"]),
        ),
        "page_token",
    ),
    "ListOrders page_token with a bad position": (
        "ListOrders",
        order_pb2.ListOrdersRequest(
            customer_id="c",
            page_token=encode_page_token({"rpc": "ListOrders", "customer_id": "c"}, "x"),
        ),
        "page_token",
    ),
    "CancelOrder id": (
        "CancelOrder",
        order_pb2.CancelOrderRequest(request_id="6c0d7a4e-3f4b-4b8e-9a51-2f7d0e3c1a90"),
        "id",
    ),
    "CancelOrder reason": (
        "CancelOrder",
        order_pb2.CancelOrderRequest(
            id="o", reason="r" * 201, request_id="6c0d7a4e-3f4b-4b8e-9a51-2f7d0e3c1a90"
        ),
        "reason",
    ),
    "CancelOrder request_id": ("CancelOrder", order_pb2.CancelOrderRequest(id="o"), "request_id"),
    "CancelOrder request_id not a uuid": (
        "CancelOrder",
        order_pb2.CancelOrderRequest(id="o", request_id="retry-1"),
        "request_id",
    ),
}


@pytest.fixture
async def stub(order_alone):
    # As the order sidecar would let it: each call acts for the customer it names.
    target = f"127.0.0.1:{order_alone.port}"
    async with grpc.aio.insecure_channel(
        target, interceptors=[ActsForTheNamedCustomer()]
    ) as channel:
        yield contracts.service("order").stub(channel)


async def _assert_invalid(stub, method: str, request, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, method)(request, timeout=5)
    details = error_details(caught.value)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert field in details.fields, details.field_violations


@pytest.mark.parametrize("case", PLACE_CASES, ids=list(PLACE_CASES))
async def test_place_order_rule(stub, databases, case):
    field = case.split(" ")[0]
    method, request = _place(PLACE_CASES[case])()
    await _assert_invalid(stub, method, request, field)
    assert query(databases.admin_url("order"), "SELECT count(*) FROM orders") == [(0,)]
    assert query(databases.admin_url("order"), "SELECT count(*) FROM saga_history") == [(0,)]


@pytest.mark.parametrize("case", OTHER_CASES, ids=list(OTHER_CASES))
async def test_other_rule(stub, case):
    method, request, field = OTHER_CASES[case]
    await _assert_invalid(stub, method, request, field)


async def test_every_problem_is_reported_at_once(stub):
    request = order_pb2.PlaceOrderRequest(items=[order_pb2.OrderItem(product_id="a")])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.PlaceOrder(request, timeout=5)
    assert error_details(caught.value).fields == {
        "items[0].quantity",
        "shipping_address",
        "payment_method",
        "request_id",
    }
