"""Two payment processes on one database: the same request_id captures once."""

import asyncio
import uuid

from google.type import money_pb2

from mesh import contracts
from services.runtime.testing import connect, serving, spawn

from ..rows import query

payment = contracts.service("payment")
m = payment.messages


async def test_one_request_id_on_two_replicas_captures_once(databases, tmp_path):
    """20 duplicate charges, 10 to each replica, at once: one capture at the gateway."""
    # Latency keeps both replicas inside the gateway call at the same time.
    env = {"SHOPMESH_GATEWAY_LATENCY_MS": "200"}
    request = m.ChargeRequest(
        order_id="o-1",
        amount=money_pb2.Money(currency_code="USD", units=42),
        payment_method=m.PaymentMethod(card=m.CardToken(token="tok_visa")),
        request_id=str(uuid.uuid4()),
    )
    async with serving("payment", databases, env) as local:
        with spawn("payment", databases, tmp_path, env) as other:

            async def charge(port):
                async with connect(port) as channel:
                    return (await payment.stub(channel).Charge(request)).payment

            answers = await asyncio.gather(*(charge(p) for p in [local.port, other.port] * 10))
    assert len({a.id for a in answers}) == 1
    assert {a.status for a in answers} == {m.PAYMENT_STATUS_CAPTURED}
    gateway = query(
        databases.admin_url("payment_gateway"), "SELECT count(*) FROM gateway_operations"
    )
    assert gateway == [(1,)]
    assert query(databases.admin_url("payment"), "SELECT count(*) FROM payments") == [(1,)]
