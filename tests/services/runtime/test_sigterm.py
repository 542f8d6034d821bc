"""SIGTERM on a real `python -m services` process: drain, finish in-flight work, exit 0."""

import asyncio
import signal
import sys
import uuid

from google.type import money_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh import contracts
from services.runtime.testing import connect, spawn

payment = contracts.service("payment")
m = payment.messages


async def test_sigterm_lets_the_in_flight_call_finish_and_exits_zero(databases, tmp_path):
    # The payment gateway's latency knob gives a call that is surely in flight.
    env = {"SHOPMESH_GATEWAY_LATENCY_MS": "1500", "SHOPMESH_DRAIN_SECONDS": "10"}
    with spawn("payment", databases, tmp_path, env) as server:
        async with connect(server.port) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert (await health.Check(health_pb2.HealthCheckRequest())).status == (
                health_pb2.HealthCheckResponse.SERVING
            )
            request = m.ChargeRequest(
                order_id="o-1",
                amount=money_pb2.Money(currency_code="USD", units=5),
                payment_method=m.PaymentMethod(card=m.CardToken(token="tok_visa")),
                request_id=str(uuid.uuid4()),
            )
            in_flight = asyncio.ensure_future(payment.stub(channel).Charge(request, timeout=20))
            await asyncio.sleep(0.5)
            server.process.send_signal(signal.SIGTERM)
            paid = (await in_flight).payment
        code = await asyncio.to_thread(server.process.wait, 20)
    assert paid.status == m.PAYMENT_STATUS_CAPTURED
    assert code == 0
    messages = [entry["message"] for entry in server.log_lines()]
    assert messages.index("draining") < messages.index("stopped")


async def test_shopmesh_serve_runs_a_service_that_exits_zero_on_sigterm(databases, tmp_path):
    command = [sys.executable, "-m", "shopmesh.cli", "serve", "catalog"]
    with spawn("catalog", databases, tmp_path, command=command) as server:
        async with connect(server.port) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service="shop.catalog.v1.CatalogService")
            assert (await health.Check(request)).status == health_pb2.HealthCheckResponse.SERVING
        server.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(server.process.wait, 20)
    assert code == 0
