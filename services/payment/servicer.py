"""PaymentService handlers: validate, dedupe on request_id, go through the gateway."""

from __future__ import annotations

import hashlib
import logging

from google.protobuf import timestamp_pb2

from mesh import contracts
from services.payment.gateway import GatewayError, IdempotencyKeyReused
from services.payment.store import (
    NewCharge,
    Payment,
    PaymentStore,
    Refund,
    request_id_reused,
)
from services.runtime import ServerConfig
from services.runtime.errors import Unavailable
from services.runtime.money import from_nanos, to_nanos
from services.runtime.validation import Violations

__all__ = ["PaymentServicer"]

log = logging.getLogger("shopmesh.payment")
contract = contracts.service("payment")
messages = contract.messages

MAX_REASON_LENGTH = 200
_WALLET_BRANDS = {
    messages.WALLET_PROVIDER_APPLE_PAY: "apple_pay",
    messages.WALLET_PROVIDER_GOOGLE_PAY: "google_pay",
    messages.WALLET_PROVIDER_PAYPAL: "paypal",
}


def _timestamp(micros: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMicroseconds(micros)
    return stamp


def refund_message(refund: Refund, currency: str):
    return messages.Refund(
        id=refund.id,
        payment_id=refund.payment_id,
        amount=from_nanos(currency, refund.amount_nanos),
        reason=refund.reason,
        create_time=_timestamp(refund.create_us),
    )


def payment_message(payment: Payment):
    return messages.Payment(
        id=payment.id,
        order_id=payment.order_id,
        amount=from_nanos(payment.currency, payment.amount_nanos),
        refunded_amount=from_nanos(payment.currency, payment.refunded_nanos),
        status=payment.status,
        decline_reason=payment.decline_reason,
        method=messages.PaymentMethodSummary(
            kind=payment.method_kind, brand=payment.method_brand, last4=payment.last4
        ),
        refunds=[refund_message(r, payment.currency) for r in payment.refunds],
        create_time=_timestamp(payment.create_us),
    )


def _fingerprint(request) -> str:
    """What a retry must repeat exactly: the request without its request_id, hashed."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def _check_method(method, violations: Violations) -> None:
    kind = method.WhichOneof("kind")
    if kind is None:
        violations.add("payment_method", "is required: a card or a wallet")
    elif kind == "card":
        violations.payment_token(method.card.token, "payment_method.card.token")
    else:
        if method.wallet.provider not in _WALLET_BRANDS:
            violations.add("payment_method.wallet.provider", "is required")
        violations.payment_token(method.wallet.token, "payment_method.wallet.token")


class PaymentServicer(contract.servicer_base):
    def __init__(self, config: ServerConfig, store: PaymentStore) -> None:
        self._store = store

    async def Charge(self, request, context):
        violations = Violations()
        violations.required(request.order_id, "order_id")
        violations.required(request.request_id, "request_id")
        if request.HasField("amount"):
            violations.money(request.amount, "amount", positive=True)
        else:
            violations.add("amount", "is required")
        _check_method(request.payment_method, violations)
        violations.check()

        fingerprint = _fingerprint(request)
        if earlier := await self._store.payment_for_request(request.request_id, fingerprint):
            return messages.ChargeResponse(payment=payment_message(earlier))
        method = request.payment_method
        wallet = _WALLET_BRANDS[method.wallet.provider] if method.HasField("wallet") else None
        amount_nanos = to_nanos(request.amount)
        try:
            result = await self._store.gateway.charge(
                f"charge:{request.request_id}",
                fingerprint,
                amount_nanos=amount_nanos,
                currency=request.amount.currency_code,
                token=method.wallet.token if wallet else method.card.token,
                wallet=wallet,
            )
        except GatewayError as error:
            log.warning("gateway failed a charge: %s", error, extra={"order_id": request.order_id})
            raise Unavailable(
                "the payment gateway did not answer; retry with the same request_id",
                reason="GATEWAY_UNAVAILABLE",
            ) from error
        except IdempotencyKeyReused:
            raise request_id_reused(request.request_id) from None
        charge = NewCharge(
            order_id=request.order_id,
            currency=request.amount.currency_code,
            amount_nanos=amount_nanos,
            method_kind="wallet" if wallet else "card",
        )
        payment = await self._store.record_charge(request.request_id, fingerprint, charge, result)
        return messages.ChargeResponse(payment=payment_message(payment))

    async def Refund(self, request, context):
        violations = Violations()
        violations.required(request.payment_id, "payment_id")
        violations.required(request.request_id, "request_id")
        violations.max_length(request.reason, "reason", MAX_REASON_LENGTH)
        if request.HasField("amount"):
            violations.money(request.amount, "amount", positive=True)
        violations.check()

        amount = to_nanos(request.amount) if request.HasField("amount") else None
        if amount is not None:
            payment = await self._store.get(request.payment_id)
            if request.amount.currency_code != payment.currency:
                violations.add("amount.currency_code", f"must be {payment.currency}")
                violations.check()
        refund, payment = await self._store.hold_refund(
            request.payment_id, amount, request.reason, request.request_id, _fingerprint(request)
        )
        if refund.state != "done":
            try:
                await self._store.gateway.refund(
                    f"refund:{request.request_id}",
                    _fingerprint(request),
                    charge_reference=payment.gateway_reference,
                    amount_nanos=refund.amount_nanos,
                )
            except GatewayError as error:
                await self._store.drop_refund(refund.id)
                raise Unavailable(
                    "the payment gateway did not answer; retry with the same request_id",
                    reason="GATEWAY_UNAVAILABLE",
                ) from error
            except IdempotencyKeyReused:
                await self._store.drop_refund(refund.id)
                raise request_id_reused(request.request_id) from None
            refund, payment = await self._store.complete_refund(refund.id)
        return messages.RefundResponse(
            refund=refund_message(refund, payment.currency), payment=payment_message(payment)
        )

    async def GetPayment(self, request, context):
        violations = Violations()
        violations.required(request.id, "id")
        violations.check()
        return messages.GetPaymentResponse(
            payment=payment_message(await self._store.get(request.id))
        )
