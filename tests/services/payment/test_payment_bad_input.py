"""Every validation rule of payment: INVALID_ARGUMENT naming the fields, store unchanged."""

import grpc
import pytest
from google.type import money_pb2

from mesh import contracts
from services.runtime.testing import connect, error_details, serving

from ..rows import snapshot

payment = contracts.service("payment")
m = payment.messages


def money(currency="USD", units=10, nanos=0):
    return money_pb2.Money(currency_code=currency, units=units, nanos=nanos)


def card(token="tok_visa"):
    return m.PaymentMethod(card=m.CardToken(token=token))


def charge(**fields):
    values = {"order_id": "o-1", "amount": money(), "payment_method": card(), "request_id": "r-1"}
    return m.ChargeRequest(**{**values, **fields})


def wallet(provider=m.WALLET_PROVIDER_PAYPAL, token="w-1"):
    return m.PaymentMethod(wallet=m.WalletToken(provider=provider, token=token))


CASES = [
    ("Charge", charge(order_id=""), {"order_id"}),
    ("Charge", charge(request_id=""), {"request_id"}),
    ("Charge", charge(request_id="r" * 129), {"request_id"}),
    ("Charge", m.ChargeRequest(order_id="o", payment_method=card(), request_id="r"), {"amount"}),
    ("Charge", charge(amount=money(units=0)), {"amount"}),
    ("Charge", charge(amount=money(units=-5)), {"amount"}),
    ("Charge", charge(amount=money("usd")), {"amount.currency_code"}),
    ("Charge", charge(amount=money("XYZ")), {"amount.currency_code"}),
    ("Charge", charge(amount=money(units=1, nanos=-1)), {"amount.nanos"}),
    ("Charge", charge(amount=money(units=0, nanos=2_000_000_000)), {"amount.nanos"}),
    ("Charge", charge(payment_method=m.PaymentMethod()), {"payment_method"}),
    ("Charge", charge(payment_method=card("")), {"payment_method.card.token"}),
    ("Charge", charge(payment_method=card("4242424242424242")), {"payment_method.card.token"}),
    ("Charge", charge(payment_method=card("4242 4242 4242 4242")), {"payment_method.card.token"}),
    ("Charge", charge(payment_method=card("t" * 257)), {"payment_method.card.token"}),
    (
        "Charge",
        charge(payment_method=wallet(provider=m.WALLET_PROVIDER_UNSPECIFIED)),
        {"payment_method.wallet.provider"},
    ),
    ("Charge", charge(payment_method=wallet(token="")), {"payment_method.wallet.token"}),
    (
        "Charge",
        m.ChargeRequest(amount=money("eur", -1)),
        {"order_id", "request_id", "amount.currency_code", "amount", "payment_method"},
    ),
    ("Refund", m.RefundRequest(request_id="r"), {"payment_id"}),
    ("Refund", m.RefundRequest(payment_id="p"), {"request_id"}),
    ("Refund", m.RefundRequest(payment_id="p", request_id="r", reason="x" * 201), {"reason"}),
    ("Refund", m.RefundRequest(payment_id="p", request_id="r", amount=money(units=0)), {"amount"}),
    ("GetPayment", m.GetPaymentRequest(), {"id"}),
]


def _snapshot(databases) -> list:
    return [
        snapshot(databases.admin_url("payment"), "payments", "refunds"),
        snapshot(databases.admin_url("payment_gateway"), "gateway_operations"),
    ]


@pytest.mark.parametrize(("method", "request_message", "fields"), CASES)
async def test_bad_input_names_the_fields_and_changes_nothing(
    databases, method, request_message, fields
):
    async with serving("payment", databases) as server, connect(server) as channel:
        stub = payment.stub(channel)
        await stub.Charge(charge(request_id="seed"))  # something that must stay as it is
        before = _snapshot(databases)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await getattr(stub, method)(request_message)
        details = error_details(caught.value)
        assert details.code is grpc.StatusCode.INVALID_ARGUMENT
        assert details.fields == fields
        assert details.domain == "shop.payment.v1"
        assert _snapshot(databases) == before


async def test_refund_in_another_currency_names_the_currency(databases):
    async with serving("payment", databases) as server, connect(server) as channel:
        stub = payment.stub(channel)
        paid = (await stub.Charge(charge(request_id="c-1"))).payment
        before = _snapshot(databases)
        request = m.RefundRequest(payment_id=paid.id, request_id="r-2", amount=money("EUR", 1))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Refund(request)
        assert error_details(caught.value).fields == {"amount.currency_code"}
        assert _snapshot(databases) == before
