"""Two payment processes on one data dir: the same request_id captures once."""

import asyncio
import sqlite3
import uuid

from google.type import money_pb2

from mesh import contracts
from services.runtime.testing import connect, serving, spawn

payment = contracts.service("payment")
m = payment.messages


async def test_one_request_id_on_two_replicas_captures_once(tmp_path):
    # Latency keeps both replicas inside the gateway call at the same time.
    env = {"SHOPMESH_GATEWAY_LATENCY_MS": "200"}
    request = m.ChargeRequest(
        order_id="o-1",
        amount=money_pb2.Money(currency_code="USD", units=42),
        payment_method=m.PaymentMethod(card=m.CardToken(token="tok_visa")),
        request_id=str(uuid.uuid4()),
    )
    async with serving("payment", tmp_path, env) as local:
        with spawn("payment", tmp_path, env) as other:

            async def charge(port):
                async with connect(port) as channel:
                    return (await payment.stub(channel).Charge(request)).payment

            answers = await asyncio.gather(*(charge(p) for p in [local.port, other.port] * 3))
    assert len({a.id for a in answers}) == 1
    assert {a.status for a in answers} == {m.PAYMENT_STATUS_CAPTURED}
    with sqlite3.connect(tmp_path / "payment-gateway.sqlite3") as connection:
        assert connection.execute("SELECT count(*) FROM gateway_operations").fetchone()[0] == 1
    with sqlite3.connect(tmp_path / "payment.sqlite3") as connection:
        assert connection.execute("SELECT count(*) FROM payments").fetchone()[0] == 1
