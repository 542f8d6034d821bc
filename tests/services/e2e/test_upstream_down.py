"""An upstream that is down: the order fails fast when nothing is held, and otherwise
gives the stock back at once and is finished by background recovery once it returns."""

from __future__ import annotations

import asyncio
import contextlib
import time

import grpc
import pytest
from shop.order.v1 import order_pb2

from services.runtime import create_server
from services.runtime.testing import error_details, serving, test_config
from tests.services.order.checkout import place_request

from ..rows import query
from .shop import UPSTREAMS, Shop, upstreams

CUP = "kitchen-espresso-cup"


@contextlib.asynccontextmanager
async def stoppable_shop(databases):
    """The four services in this process; `servers[name].stop(0)` takes an upstream down."""
    servers = {}
    for name in UPSTREAMS:
        servers[name], _ = await create_server(test_config(name, databases))
    shop = Shop(databases=databases, ports={name: s.port for name, s in servers.items()})
    try:
        async with serving("order", databases, shop.order_env()) as order:
            shop.ports["order"] = order.port
            yield shop, servers
    finally:
        await shop.close()
        for server in servers.values():
            await server.stop(0)


async def _restart(servers, shop, name: str) -> None:
    """The same service, data and port again (as after a pod restart)."""
    config = test_config(name, shop.databases, listen=f"127.0.0.1:{shop.ports[name]}")
    servers[name], _ = await create_server(config)


async def test_catalog_down_fails_the_order_at_once(databases):
    async with stoppable_shop(databases) as (shop, servers):
        await servers["catalog"].stop(0)
        order = (await shop.order.PlaceOrder(place_request((CUP, 1)), timeout=10)).order
    assert order.status == order_pb2.ORDER_STATUS_FAILED
    assert order.failure_reason == "CATALOG_UNAVAILABLE"
    assert not order.reservation_id and not order.payment_id


async def test_payment_down_releases_stock_and_recovery_finishes_the_order(databases):
    async with stoppable_shop(databases) as (shop, servers):
        before = await shop.stock(CUP)
        await servers["payment"].stop(0)
        request = place_request((CUP, 2))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await shop.order.PlaceOrder(request, timeout=10)
        details = error_details(caught.value)
        assert (details.code, details.reason) == (
            grpc.StatusCode.UNAVAILABLE,
            "ORDER_IN_PROGRESS",
        )
        order_id = details.metadata["order_id"]

        # The charge's outcome is unknown, so the order cannot end yet; its stock is back.
        level = await shop.stock(CUP)
        assert (level.available, level.reserved) == (before.available, 0)
        pending = (await shop.order.GetOrder(order_pb2.GetOrderRequest(id=order_id))).order
        assert pending.status == order_pb2.ORDER_STATUS_PENDING

        await _restart(servers, shop, "payment")
        order = await _final(shop, order_id, within=20)
        assert (order.status, order.failure_reason) == (
            order_pb2.ORDER_STATUS_FAILED,
            "PAYMENT_UNAVAILABLE",
        )
        # Recovery learned the charge's outcome by closing it (never by charging again):
        # payment was down, so nothing was taken, and the gateway saw only the closed key.
        assert not order.payment_id
        kinds = query(databases.admin_url("payment_gateway"), "SELECT kind FROM gateway_operations")
        assert kinds == [("closed",)]
        assert (await shop.order.PlaceOrder(request, timeout=10)).order == order
        level = await shop.stock(CUP)
        assert (level.available, level.reserved, level.sold) == (
            before.available,
            0,
            before.sold,
        )


async def _final(shop, order_id: str, within: float, stub=None) -> order_pb2.Order:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        request = order_pb2.GetOrderRequest(id=order_id)
        order = (await (stub or shop.order).GetOrder(request)).order
        if order.status != order_pb2.ORDER_STATUS_PENDING:
            return order
        await asyncio.sleep(0.1)
    raise AssertionError(f"order {order_id} still pending after {within}s")


async def test_a_charge_the_gateway_never_answers_is_settled_at_once(databases):
    """A gateway that never answers for a token: payment closes the charge's key, so the
    order learns for certain that nothing was taken and ends FAILED at once, with no
    reconciliation left to do (the gateway-unreachable case is in test_money_path.py)."""
    hanging_gateway = {"SHOPMESH_GATEWAY_TIMEOUT_MS": "100"}
    async with upstreams(databases, hanging_gateway) as shop:
        before = await shop.stock(CUP)
        env = shop.order_env(SHOPMESH_ORDER_UNKNOWN_CHARGE_SECONDS="2")
        async with serving("order", databases, env) as order_server:
            stub = shop.connect("order", order_server.port)
            request = place_request((CUP, 1), token="tok_timeout")
            order = (await stub.PlaceOrder(request, timeout=10)).order
        assert (order.status, order.failure_reason) == (
            order_pb2.ORDER_STATUS_FAILED,
            "PAYMENT_UNAVAILABLE",
        )
        assert "nothing was charged" in order.failure_message and not order.payment_id
        assert query(databases.admin_url("order"), "SELECT * FROM reconciliations") == []
        level = await shop.stock(CUP)
        assert (level.available, level.reserved) == (before.available, 0)
