"""Checkout bursts over the rate limit: 429 or RESOURCE_EXHAUSTED, never 5xx or half orders."""

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.protobuf import json_format

from mesh import contracts

from .conftest import CHECKOUT_BURST, CHECKOUT_PER_SECOND
from .meshclient import as_customer, as_workload, order_body, orders_of, rest

pytestmark = pytest.mark.timeout(180)
PRODUCT, SKU = "kitchen-espresso-cup", "KIT-1001"
BURST = 30
FINAL = {"ORDER_STATUS_CONFIRMED", "ORDER_STATUS_FAILED"}


def _stock(mesh):
    """The SKU's stock as the ops tool reads it: straight from an inventory replica."""
    inventory = contracts.service("inventory")
    with as_workload(mesh, "ops", mesh.replica("inventory", 0)) as channel:
        request = inventory.messages.GetStockRequest(sku=SKU)
        return inventory.stub(channel).GetStock(request, timeout=5).stock


@pytest.fixture
def full_bucket():
    time.sleep(CHECKOUT_BURST / CHECKOUT_PER_SECOND + 0.2)
    yield
    time.sleep(CHECKOUT_BURST / CHECKOUT_PER_SECOND + 0.2)  # leave it full for other tests


def test_a_rest_burst_gets_429s_and_only_whole_orders(mesh, full_bucket):
    customer = f"flash-{uuid.uuid4().hex[:8]}"
    stock_before = _stock(mesh)
    bodies = [order_body(customer, PRODUCT) for _ in range(BURST)]
    with ThreadPoolExecutor(BURST) as pool:
        token = as_customer(mesh, customer)
        responses = list(
            pool.map(lambda body: rest(mesh, "POST", "/v1/orders", body, token), bodies)
        )
    statuses = Counter(r.status for r in responses)
    assert set(statuses) <= {200, 429}, statuses
    # The bucket holds CHECKOUT_BURST; a little refills while the burst arrives.
    assert 1 <= statuses[200] <= CHECKOUT_BURST + CHECKOUT_PER_SECOND, statuses
    for response in responses:
        if response.status == 429:
            assert response.json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
            assert response.headers["x-ratelimit-limit"]
    accepted = sorted(r.json()["order"]["id"] for r in responses if r.status == 200)
    orders = orders_of(mesh, customer)
    assert sorted(o["id"] for o in orders) == accepted
    assert {o["status"] for o in orders} <= FINAL
    # Stock moved by exactly the confirmed orders; nothing is left reserved.
    confirmed = sum(o["status"] == "ORDER_STATUS_CONFIRMED" for o in orders)
    stock_after = _stock(mesh)
    assert stock_after.sold - stock_before.sold == confirmed
    assert stock_after.reserved == stock_before.reserved


def test_a_grpc_burst_gets_resource_exhausted(mesh, full_bucket):
    order = contracts.service("order")
    customer = f"flash-grpc-{uuid.uuid4().hex[:8]}"
    requests = [
        json_format.ParseDict(order_body(customer, PRODUCT), order.messages.PlaceOrderRequest())
        for _ in range(BURST)
    ]
    with grpc.insecure_channel(mesh.edge_address) as channel:
        stub = order.stub(channel)
        token = tuple(as_customer(mesh, customer).items())
        calls = [
            stub.PlaceOrder.future(request, timeout=30, metadata=token) for request in requests
        ]
        codes = Counter(call.code() for call in calls)
        accepted = sorted(
            call.result().order.id for call in calls if call.code() == grpc.StatusCode.OK
        )
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, codes
    assert codes[grpc.StatusCode.RESOURCE_EXHAUSTED] >= BURST - 2 * CHECKOUT_BURST, codes
    assert sorted(o["id"] for o in orders_of(mesh, customer)) == accepted
