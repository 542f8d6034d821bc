"""PaymentService: charges, declines, dedupe, refunds — real server, real PostgreSQL
databases (the service's and the simulated gateway's)."""

import asyncio
import uuid

import grpc
import pytest
from google.type import money_pb2

from mesh import contracts
from services.runtime.testing import connect, error_details, serving

from ..rows import query, snapshot

payment = contracts.service("payment")
m = payment.messages


def usd(units: int, nanos: int = 0) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", units=units, nanos=nanos)


def card(token: str):
    return m.PaymentMethod(card=m.CardToken(token=token))


def charge(token="tok_visa", amount=None, order_id="o-1", request_id=None):
    return m.ChargeRequest(
        order_id=order_id,
        amount=amount or usd(25),
        payment_method=card(token),
        request_id=request_id or str(uuid.uuid4()),
    )


@pytest.fixture
async def server(databases):
    env = {"SHOPMESH_GATEWAY_TIMEOUT_MS": "100"}
    async with serving("payment", databases, env) as server:
        yield server


@pytest.fixture
async def stub(server):
    async with connect(server) as channel:
        yield payment.stub(channel)


def gateway_operations(databases) -> int:
    [(count,)] = query(
        databases.admin_url("payment_gateway"), "SELECT count(*) FROM gateway_operations"
    )
    return count


async def _fails(call):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return error_details(caught.value)


@pytest.mark.parametrize(
    ("token", "brand", "last4"),
    [("tok_visa", "visa", "4242"), ("tok_mastercard", "mastercard", "4444")],
)
async def test_approved_charge_is_captured_with_brand_and_last4(stub, token, brand, last4):
    paid = (await stub.Charge(charge(token, usd(25, 500_000_000)))).payment
    assert paid.status == m.PAYMENT_STATUS_CAPTURED
    assert (paid.method.kind, paid.method.brand, paid.method.last4) == ("card", brand, last4)
    assert (paid.amount.units, paid.amount.nanos) == (25, 500_000_000)
    assert paid.id.startswith("pay_") and paid.create_time.seconds > 0
    assert (await stub.GetPayment(m.GetPaymentRequest(id=paid.id))).payment == paid


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("tok_decline_insufficient_funds", m.DECLINE_REASON_INSUFFICIENT_FUNDS),
        ("tok_decline_expired", m.DECLINE_REASON_CARD_EXPIRED),
        ("tok_decline_fraud", m.DECLINE_REASON_SUSPECTED_FRAUD),
        ("tok_decline_do_not_honor", m.DECLINE_REASON_DO_NOT_HONOR),
        ("tok_decline_currency", m.DECLINE_REASON_CURRENCY_NOT_SUPPORTED),
        ("tok_unknown_to_gateway", m.DECLINE_REASON_INVALID_TOKEN),
    ],
)
async def test_declines_are_payments_with_a_reason_not_errors(stub, token, reason):
    request = charge(token)
    declined = (await stub.Charge(request)).payment
    assert (declined.status, declined.decline_reason) == (m.PAYMENT_STATUS_DECLINED, reason)
    assert (await stub.Charge(request)).payment == declined  # a retry gets the same answer


async def test_wallet_charge_is_captured(stub):
    wallet = m.PaymentMethod(
        wallet=m.WalletToken(provider=m.WALLET_PROVIDER_APPLE_PAY, token="wallet-abc")
    )
    request = m.ChargeRequest(
        order_id="o-w", amount=usd(9), payment_method=wallet, request_id=str(uuid.uuid4())
    )
    paid = (await stub.Charge(request)).payment
    assert paid.status == m.PAYMENT_STATUS_CAPTURED
    assert (paid.method.kind, paid.method.brand, paid.method.last4) == ("wallet", "apple_pay", "")


async def test_same_request_id_charges_once(databases, stub):
    request = charge()
    first = (await stub.Charge(request)).payment
    again = await asyncio.gather(*(stub.Charge(request) for _ in range(5)))
    assert {r.payment.id for r in again} == {first.id}
    assert gateway_operations(databases) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"amount": usd(26)},
        {"order_id": "o-other"},
        {"token": "tok_mastercard"},
    ],
)
async def test_same_request_id_with_a_different_charge_is_refused(stub, change):
    request = charge()
    await stub.Charge(request)
    reused = charge(
        change.get("token", "tok_visa"),
        change.get("amount", usd(25)),
        change.get("order_id", "o-1"),
        request.request_id,
    )
    details = await _fails(stub.Charge(reused))
    assert (details.code, details.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "REQUEST_ID_REUSED",
    )


async def test_a_gateway_timeout_before_any_capture_closes_the_charge(databases, stub):
    """The gateway times out without capturing: payment settles the outcome itself by
    closing the charge's key, so the caller learns for certain that nothing was taken
    (and a late original never can be)."""
    details = await _fails(stub.Charge(charge("tok_timeout")))
    assert (details.code, details.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CHARGE_CLOSED")
    assert details.metadata["outcome"] == "NOTHING_DONE"
    kinds = query(databases.admin_url("payment_gateway"), "SELECT kind FROM gateway_operations")
    assert kinds == [("closed",)]
    assert query(databases.admin_url("payment"), "SELECT count(*) FROM payments") == [(0,)]


async def test_a_flaky_gateway_retried_with_the_same_request_id_captures_at_most_once(databases):
    """Each request, retried until it gets a definite answer, ends either captured (once)
    or closed (nothing taken): the gateway's own ledger agrees with every answer."""
    env = {"SHOPMESH_GATEWAY_ERROR_RATE": "0.6", "SHOPMESH_GATEWAY_SEED": "7"}
    answers = {"captured": 0, "closed": 0}
    failures = 0
    async with serving("payment", databases, env) as server, connect(server) as channel:
        stub = payment.stub(channel)
        for request in [charge(order_id=f"o-{n}") for n in range(6)]:
            for _attempt in range(50):
                try:
                    await stub.Charge(request)
                    answers["captured"] += 1
                    break
                except grpc.aio.AioRpcError as error:
                    if error_details(error).reason == "CHARGE_CLOSED":
                        answers["closed"] += 1
                        break
                    assert error.code() is grpc.StatusCode.UNAVAILABLE
                    failures += 1
    assert failures + answers["closed"] > 0  # the chaos knob did bite
    assert sum(answers.values()) == 6
    rows = dict(
        query(
            databases.admin_url("payment_gateway"),
            "SELECT kind, count(*) FROM gateway_operations GROUP BY kind",
        )
    )
    assert (rows.get("charge", 0), rows.get("closed", 0)) == (
        answers["captured"],
        answers["closed"],
    )
    [(payments,)] = query(databases.admin_url("payment"), "SELECT count(*) FROM payments")
    assert payments == answers["captured"]


async def test_partial_then_full_refund_moves_status_and_never_exceeds_capture(stub):
    paid = (await stub.Charge(charge(amount=usd(10)))).payment
    first = m.RefundRequest(
        payment_id=paid.id, amount=usd(4), reason="damaged", request_id=str(uuid.uuid4())
    )
    response = await stub.Refund(first)
    assert response.payment.status == m.PAYMENT_STATUS_PARTIALLY_REFUNDED
    assert response.payment.refunded_amount.units == 4 and response.refund.reason == "damaged"
    assert (await stub.Refund(first)).refund.id == response.refund.id  # deduped

    too_much = m.RefundRequest(payment_id=paid.id, amount=usd(7), request_id=str(uuid.uuid4()))
    details = await _fails(stub.Refund(too_much))
    assert (details.code, details.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "REFUND_EXCEEDS_CAPTURE",
    )

    rest = await stub.Refund(m.RefundRequest(payment_id=paid.id, request_id=str(uuid.uuid4())))
    assert rest.refund.amount.units == 6
    assert rest.payment.status == m.PAYMENT_STATUS_REFUNDED
    assert [r.amount.units for r in rest.payment.refunds] == [4, 6]
    nothing_left = m.RefundRequest(payment_id=paid.id, request_id=str(uuid.uuid4()))
    assert (await _fails(stub.Refund(nothing_left))).reason == "REFUND_EXCEEDS_CAPTURE"


async def test_concurrent_refunds_never_add_up_to_more_than_the_capture(stub):
    paid = (await stub.Charge(charge(amount=usd(10)))).payment

    async def refund_three():
        request = m.RefundRequest(payment_id=paid.id, amount=usd(3), request_id=str(uuid.uuid4()))
        try:
            await stub.Refund(request)
            return True
        except grpc.aio.AioRpcError as error:
            assert error_details(error).reason == "REFUND_EXCEEDS_CAPTURE"
            return False

    done = await asyncio.gather(*(refund_three() for _ in range(10)))
    assert sum(done) == 3
    final = (await stub.GetPayment(m.GetPaymentRequest(id=paid.id))).payment
    assert final.refunded_amount.units == 9 and len(final.refunds) == 3


async def test_refund_of_a_declined_or_unknown_payment_fails(stub):
    declined = (await stub.Charge(charge("tok_decline_expired"))).payment
    request = m.RefundRequest(payment_id=declined.id, request_id=str(uuid.uuid4()))
    assert (await _fails(stub.Refund(request))).reason == "PAYMENT_NOT_CAPTURED"
    request = m.RefundRequest(payment_id="pay_nope", request_id=str(uuid.uuid4()))
    assert (await _fails(stub.Refund(request))).code is grpc.StatusCode.NOT_FOUND
    assert (await _fails(stub.GetPayment(m.GetPaymentRequest(id="pay_nope")))).reason == (
        "PAYMENT_NOT_FOUND"
    )


async def test_nothing_chargeable_is_stored(databases, stub):
    await stub.Charge(charge("tok_visa"))
    card_number = "4111111111111111"
    details = await _fails(stub.Charge(charge(card_number)))
    assert details.fields == {"payment_method.card.token"}
    assert card_number not in details.message
    # Every row of every table of both databases (the service's and the gateway's).
    for role in ("payment", "payment_gateway"):
        tables = snapshot(databases.admin_url(role))
        assert tables, role
        for table, rows in tables.items():
            content = "\n".join(rows)
            assert card_number not in content, (role, table)
            assert "tok_visa" not in content, (role, table)  # only kind, brand and last4 are kept
    [(stored,)] = query(databases.admin_url("payment"), "SELECT count(*) FROM payments")
    assert stored == 1  # the good charge was stored: the scan above looked at its row
