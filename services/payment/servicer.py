"""PaymentService handlers: validate, dedupe on request_id, go through the gateway."""

from __future__ import annotations

import hashlib
import logging

from google.protobuf import timestamp_pb2

from mesh import contracts
from services.payment.gateway import (
    GatewayError,
    GatewayRecord,
    GatewayTimeout,
    IdempotencyKeyReused,
    KeyClosed,
)
from services.payment.store import (
    NewCharge,
    Payment,
    PaymentStore,
    Refund,
    request_id_reused,
)
from services.runtime import ServerConfig
from services.runtime.errors import FailedPrecondition, Unavailable
from services.runtime.money import from_nanos, to_nanos
from services.runtime.postgres import StoreUnavailable
from services.runtime.validation import Violations

__all__ = ["PaymentServicer"]

log = logging.getLogger("shopmesh.payment")
contract = contracts.service("payment")
messages = contract.messages

MAX_REASON_LENGTH = 200
# ErrorInfo metadata `outcome` of a failure that certainly moved no money.
NOTHING_DONE = "NOTHING_DONE"
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


def _charge_key(request_id: str) -> str:
    return f"charge:{request_id}"


def _refund_key(request_id: str) -> str:
    return f"refund:{request_id}"


def _require_request_id(request) -> None:
    violations = Violations()
    violations.required(request.request_id, "request_id")
    violations.check()


def _new_charge(request, wallet: str | None) -> NewCharge:
    method = request.payment_method
    return NewCharge(
        order_id=request.order_id,
        currency=request.amount.currency_code,
        amount_nanos=to_nanos(request.amount),
        method_kind="wallet" if (wallet or method.HasField("wallet")) else "card",
    )


def _charge_closed(request_id: str) -> FailedPrecondition:
    """The charge's key is closed at the gateway: nothing was taken, and nothing will be
    (ErrorInfo metadata outcome=NOTHING_DONE)."""
    return FailedPrecondition(
        "CHARGE_CLOSED",
        "the payment could not be taken; nothing was charged",
        metadata={"request_id": request_id, "outcome": NOTHING_DONE},
    )


def _outcome_of(payment: Payment) -> dict:
    declined = payment.status == messages.PAYMENT_STATUS_DECLINED
    outcome = messages.CHARGE_OUTCOME_DECLINED if declined else messages.CHARGE_OUTCOME_CAPTURED
    return {"outcome": outcome, "payment": payment_message(payment)}


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
        try:
            earlier = await self._store.payment_for_request(request.request_id, fingerprint)
        except StoreUnavailable as error:
            return await self._settled_by_closing(request, error)
        if earlier:
            return messages.ChargeResponse(payment=payment_message(earlier))
        method = request.payment_method
        wallet = _WALLET_BRANDS[method.wallet.provider] if method.HasField("wallet") else None
        charge = _new_charge(request, wallet)
        try:
            result = await self._store.gateway.charge(
                _charge_key(request.request_id),
                fingerprint,
                amount_nanos=charge.amount_nanos,
                currency=charge.currency,
                token=method.wallet.token if wallet else method.card.token,
                wallet=wallet,
                metadata={"order_id": charge.order_id, "method_kind": charge.method_kind},
            )
        except GatewayError as error:  # a timeout too: it may have captured
            log.warning("gateway failed a charge: %s", error, extra={"order_id": request.order_id})
            return await self._settled_by_closing(request, error)
        except IdempotencyKeyReused:
            raise request_id_reused(request.request_id) from None
        except KeyClosed:
            raise _charge_closed(request.request_id) from None
        payment = await self._store.record_charge(request.request_id, fingerprint, charge, result)
        return messages.ChargeResponse(payment=payment_message(payment))

    async def _settled_by_closing(self, request, failure: Exception):
        """After a failure, the charge's outcome made certain by closing its key at the
        gateway, so the caller never has to guess. An earlier attempt of this request_id
        (a proxy's retry, a resumed saga) may have captured: the gateway's record says so,
        and that payment is the answer. Otherwise the key is closed now, so nothing was
        taken and nothing ever will be: NOTHING_DONE. When even that cannot be learned,
        UNAVAILABLE without NOTHING_DONE: the outcome is unknown (LookupCharge or
        CloseCharge tell later)."""
        try:
            record = await self._store.gateway.close_key(_charge_key(request.request_id))
        except GatewayError:
            raise Unavailable(
                "the payment gateway did not answer: the charge may have been captured;"
                " LookupCharge or CloseCharge with the same request_id tell",
                reason="GATEWAY_TIMEOUT"
                if isinstance(failure, GatewayTimeout)
                else "GATEWAY_UNAVAILABLE",
            ) from failure
        if record.kind == "closed":
            raise _charge_closed(request.request_id) from failure
        if record.fingerprint != _fingerprint(request):
            raise request_id_reused(request.request_id) from None
        # Captured (or declined) by an earlier attempt: record it, if the store lets us.
        payment = await self._store.record_charge(
            request.request_id, record.fingerprint, _new_charge(request, None), record.result
        )
        return messages.ChargeResponse(payment=payment_message(payment))

    async def LookupCharge(self, request, context):
        _require_request_id(request)
        if payment := await self._store.payment_by_request(request.request_id):
            return messages.LookupChargeResponse(**_outcome_of(payment))
        record = await self._gateway_call(
            self._store.gateway.lookup(_charge_key(request.request_id))
        )
        return messages.LookupChargeResponse(**await self._learned(request.request_id, record))

    async def CloseCharge(self, request, context):
        _require_request_id(request)
        if payment := await self._store.payment_by_request(request.request_id):
            return messages.CloseChargeResponse(**_outcome_of(payment))
        gateway = self._store.gateway
        record = await self._gateway_call(gateway.close_key(_charge_key(request.request_id)))
        return messages.CloseChargeResponse(**await self._learned(request.request_id, record))

    async def _learned(self, request_id: str, record: GatewayRecord | None) -> dict:
        """The outcome the gateway's record of a charge key tells; a capture nobody
        recorded (its answer was lost) is recorded now, from the gateway's metadata."""
        if record is None:
            return {"outcome": messages.CHARGE_OUTCOME_NOT_FOUND}
        if record.kind == "closed":
            return {"outcome": messages.CHARGE_OUTCOME_CLOSED}
        charge = NewCharge(
            order_id=record.metadata.get("order_id", ""),
            currency=record.currency,
            amount_nanos=record.amount_nanos,
            method_kind=record.metadata.get("method_kind", "card"),
        )
        payment = await self._store.record_charge(
            request_id, record.fingerprint, charge, record.result
        )
        return _outcome_of(payment)

    @staticmethod
    async def _gateway_call(call):
        try:
            return await call
        except GatewayError as error:
            raise Unavailable(
                "the payment gateway did not answer; try again", reason="GATEWAY_UNAVAILABLE"
            ) from error

    async def LookupRefund(self, request, context):
        _require_request_id(request)
        found = await self._store.refund_by_request(request.request_id)
        if found is None:
            return messages.LookupRefundResponse(outcome=messages.REFUND_OUTCOME_NOT_FOUND)
        refund, payment = found
        if refund.state != "done":
            record = await self._gateway_call(
                self._store.gateway.lookup(_refund_key(request.request_id))
            )
            if record is not None and record.kind == "refund":
                refund, payment = await self._store.complete_refund(refund.id)
        done = refund.state == "done"
        return messages.LookupRefundResponse(
            outcome=messages.REFUND_OUTCOME_DONE if done else messages.REFUND_OUTCOME_PENDING,
            refund=refund_message(refund, payment.currency) if done else None,
            payment=payment_message(payment),
        )

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
                    _refund_key(request.request_id),
                    _fingerprint(request),
                    charge_reference=payment.gateway_reference,
                    amount_nanos=refund.amount_nanos,
                    currency=payment.currency,
                )
            except GatewayError as error:
                # No answer (or a refusal of this attempt only): an earlier attempt under
                # this request_id may have been paid out. The hold stays, so no other
                # refund can take the same money again, until the gateway's answer is
                # known: a retry with this request_id, or the pending-refund resolver.
                raise Unavailable(
                    "the payment gateway did not answer: the refund may have been made;"
                    " retry with the same request_id",
                    reason="GATEWAY_UNAVAILABLE",
                ) from error
            except (IdempotencyKeyReused, KeyClosed):
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
