"""The caller's deadline bounds the saga: no upstream call outlives it."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from prometheus_client import REGISTRY
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2

from services.order.saga import error_reason
from services.runtime.testing import serving
from tests.services.order.checkout import place_request

from .shop import upstreams

CUP = "kitchen-espresso-cup"
GATEWAY_LATENCY = 2.2  # seconds; below Charge's 3 s contract timeout
CHARGES_IN_FLIGHT = {"grpc_service": "shop.payment.v1.PaymentService", "grpc_method": "Charge"}


def charges_in_flight() -> float:
    # The payment server runs in this process, so its metrics are in this registry.
    return REGISTRY.get_sample_value("grpc_server_in_flight", CHARGES_IN_FLIGHT) or 0.0


async def test_upstream_calls_end_with_the_callers_deadline(databases):
    slow_gateway = {"SHOPMESH_GATEWAY_LATENCY_MS": str(int(GATEWAY_LATENCY * 1000))}
    async with upstreams(databases, slow_gateway) as shop:
        # No background recovery during the test: only the request itself calls upstream.
        env = shop.order_env(SHOPMESH_ORDER_RECOVERY_SECONDS="600")
        async with serving("order", databases, env) as order_server:
            stub = shop.connect("order", order_server.port)
            request = place_request((CUP, 1))
            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.PlaceOrder(request, timeout=0.7)
            # The order service stops the saga a little before the deadline to answer
            # ORDER_IN_PROGRESS with the order's id; on a slow machine the deadline may
            # still win. Either way the caller is not kept past its deadline.
            assert (caught.value.code(), error_reason(caught.value)) in {
                (grpc.StatusCode.DEADLINE_EXCEEDED, ""),
                (grpc.StatusCode.UNAVAILABLE, "ORDER_IN_PROGRESS"),
            }
            # The charge stops running upstream well before the gateway would have answered.
            while time.monotonic() - started < GATEWAY_LATENCY:
                if not charges_in_flight():
                    break
                await asyncio.sleep(0.02)
            assert charges_in_flight() == 0
            assert time.monotonic() - started < GATEWAY_LATENCY - 0.1

            # The saga was handed back, not lost: a retry with time to spare finishes it.
            order = (await stub.PlaceOrder(request, timeout=15)).order
            assert order.status == order_pb2.ORDER_STATUS_CONFIRMED, order.failure_message
            payment = await shop.payment_of(order)
            assert payment.status == payment_pb2.PAYMENT_STATUS_CAPTURED
