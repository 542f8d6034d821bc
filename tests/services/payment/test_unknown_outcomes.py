"""Payment under lost gateway answers: lookups and closes settle a charge without charging,
and a refund's hold stays until the gateway's answer is known (refunds never add up to
more than the capture, at the gateway itself)."""

from __future__ import annotations

import uuid

import grpc
import pytest

from mesh import contracts
from services.payment.resolver import settle_pending_refunds
from services.runtime.testing import connect, error_details, serving

from ..rows import query
from .test_payment import charge, usd

payment = contracts.service("payment")
m = payment.messages


def _refunded_at_gateway(databases) -> int:
    ((total,),) = query(
        databases.admin_url("payment_gateway"),
        "SELECT coalesce(sum(amount_nanos), 0) FROM gateway_operations WHERE kind = 'refund'",
    )
    return total


async def _charged(databases) -> m.Payment:
    async with serving("payment", databases) as server, connect(server) as channel:
        return (await payment.stub(channel).Charge(charge(amount=usd(25)))).payment


async def test_a_refund_whose_answer_was_lost_keeps_its_hold(databases):
    captured = await _charged(databases)
    first = m.RefundRequest(payment_id=captured.id, request_id=str(uuid.uuid4()))
    env = {"SHOPMESH_GATEWAY_LOSE_ANSWERS": "refund"}
    async with serving("payment", databases, env) as lossy, connect(lossy) as channel:
        stub = payment.stub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as lost:
            await stub.Refund(first, timeout=5)
        assert lost.value.code() == grpc.StatusCode.UNAVAILABLE
        # The gateway did pay it out. A second refund under another request_id must not
        # be able to take the same money again: the first one's hold still stands.
        second = m.RefundRequest(payment_id=captured.id, request_id=str(uuid.uuid4()))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Refund(second, timeout=5)
        details = error_details(refused.value)
        assert (details.code, details.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "REFUND_EXCEEDS_CAPTURE",
        )
        looked = await stub.LookupRefund(m.LookupRefundRequest(request_id=first.request_id))
        assert looked.outcome == m.REFUND_OUTCOME_DONE  # the lookup learned the answer
        assert looked.payment.status == m.PAYMENT_STATUS_REFUNDED
    assert _refunded_at_gateway(databases) == 25 * 10**9


async def test_the_resolver_settles_a_refund_nobody_retries(databases):
    captured = await _charged(databases)
    request = m.RefundRequest(payment_id=captured.id, request_id=str(uuid.uuid4()))
    env = {"SHOPMESH_GATEWAY_DOWN": "1"}
    async with serving("payment", databases, env) as down, connect(down) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await payment.stub(channel).Refund(request, timeout=5)
    async with serving("payment", databases) as server:
        assert await settle_pending_refunds(server.store, older_than_us=0) == 1
        async with connect(server) as channel:
            looked = await payment.stub(channel).LookupRefund(
                m.LookupRefundRequest(request_id=request.request_id)
            )
    assert looked.outcome == m.REFUND_OUTCOME_DONE
    assert _refunded_at_gateway(databases) == 25 * 10**9


async def test_lookup_and_close_tell_a_charge_without_charging(databases):
    async with serving("payment", databases) as server, connect(server) as channel:
        stub = payment.stub(channel)
        unknown = str(uuid.uuid4())
        looked = await stub.LookupCharge(m.LookupChargeRequest(request_id=unknown))
        assert looked.outcome == m.CHARGE_OUTCOME_NOT_FOUND
        closed = await stub.CloseCharge(m.CloseChargeRequest(request_id=unknown))
        assert closed.outcome == m.CHARGE_OUTCOME_CLOSED
        again = await stub.CloseCharge(m.CloseChargeRequest(request_id=unknown))
        assert again.outcome == m.CHARGE_OUTCOME_CLOSED
        # A late original of the closed request cannot capture any more.
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await stub.Charge(charge(request_id=unknown), timeout=5)
        assert error_details(late.value).reason == "CHARGE_CLOSED"
        paid = (await stub.Charge(charge())).payment
        request_id = query(
            databases.admin_url("payment"), "SELECT request_id FROM payments WHERE id = %s",
            (paid.id,),
        )[0][0]  # fmt: skip
        for call in (stub.LookupCharge, stub.CloseCharge):
            message = m.LookupChargeRequest if call is stub.LookupCharge else m.CloseChargeRequest
            answer = await call(message(request_id=request_id))
            assert (answer.outcome, answer.payment.id) == (m.CHARGE_OUTCOME_CAPTURED, paid.id)
    ((captures,),) = query(
        databases.admin_url("payment_gateway"),
        "SELECT count(*) FROM gateway_operations WHERE kind = 'charge'",
    )
    assert captures == 1  # the lookups and closes charged nothing


async def test_a_charge_that_cannot_read_payments_database_is_closed_not_left_unknown(
    databases, outage
):
    """Payment's own database is away when a charge arrives: payment cannot tell whether an
    earlier attempt captured, so it closes the key at the gateway (which it can still
    reach) and answers for certain: CHARGE_CLOSED, nothing taken, ever."""
    async with serving("payment", databases) as server, connect(server) as channel:
        stub = payment.stub(channel)
        outage.begin("payment")
        request = charge()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Charge(request, timeout=5)
        details = error_details(caught.value)
        assert (details.code, details.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "CHARGE_CLOSED",
        )
        assert details.metadata["outcome"] == "NOTHING_DONE"
        outage.end()
    rows = query(
        databases.admin_url("payment_gateway"),
        "SELECT kind, idempotency_key FROM gateway_operations",
    )
    assert rows == [("closed", f"charge:{request.request_id}")]
