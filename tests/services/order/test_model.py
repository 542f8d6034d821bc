"""Saga state and its transitions, without servers."""

from __future__ import annotations

import uuid

from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2

from services.order.model import Saga, Step, action_request_id, fingerprint, new_saga

from .checkout import place_request


def test_a_new_saga_is_pending_and_starts_by_pricing():
    request = place_request()
    saga = new_saga(request)
    assert saga.order.status == order_pb2.ORDER_STATUS_PENDING
    assert saga.step is Step.PRICE and not saga.refund_due and not saga.final
    assert saga.order.customer_id == request.customer_id
    assert saga.order.shipping_address == request.shipping_address
    assert saga.request == request
    assert new_saga(request).id != saga.id


def test_fingerprint_ignores_the_request_id_but_nothing_else():
    request = place_request(("a", 1))
    retry = order_pb2.PlaceOrderRequest()
    retry.CopyFrom(request)
    retry.request_id = str(uuid.uuid4())
    assert fingerprint(retry) == fingerprint(request)
    for change in (
        lambda r: setattr(r.items[0], "quantity", 2),
        lambda r: setattr(r, "customer_id", "other"),
        lambda r: r.payment_method.CopyFrom(
            payment_pb2.PaymentMethod(card=payment_pb2.CardToken(token="tok_amex"))
        ),
        lambda r: r.shipping_address.address_lines.append("Flat 2"),
    ):
        other = order_pb2.PlaceOrderRequest()
        other.CopyFrom(request)
        change(other)
        assert fingerprint(other) != fingerprint(request)


def test_upstream_request_ids_are_derived_per_action():
    order_id = str(uuid.uuid4())
    ids = {action: action_request_id(order_id, action) for action in ("reserve", "charge")}
    assert ids["reserve"] != ids["charge"]
    assert action_request_id(order_id, "charge") == ids["charge"]  # a resumed saga repeats it
    assert action_request_id(str(uuid.uuid4()), "charge") != ids["charge"]
    assert all(uuid.UUID(value) for value in ids.values())


def test_failing_with_nothing_to_undo_ends_the_order_at_once():
    saga = new_saga(place_request())
    saga.fail("PRODUCT_NOT_FOUND", "no product x", None)
    assert saga.final and saga.step is None
    assert saga.order.status == order_pb2.ORDER_STATUS_FAILED
    assert (saga.order.failure_reason, saga.order.failure_message) == (
        "PRODUCT_NOT_FOUND",
        "no product x",
    )
    assert not saga.request.HasField("payment_method")


def test_failing_with_something_to_undo_stays_pending_until_compensated():
    saga = new_saga(place_request())
    saga.fail("PAYMENT_DECLINED", "declined", Step.RELEASE)
    assert saga.step is Step.RELEASE and not saga.final
    assert saga.order.status == order_pb2.ORDER_STATUS_PENDING
    assert not saga.order.failure_reason  # only a FAILED order shows why
    assert saga.request.HasField("payment_method")  # an unknown charge may need it
    saga.finish(order_pb2.ORDER_STATUS_FAILED)
    assert saga.order.failure_reason == "PAYMENT_DECLINED" and saga.final


def test_confirming_forgets_the_payment_token():
    saga = Saga(
        order=order_pb2.Order(id=str(uuid.uuid4())), request=place_request(), fingerprint="x"
    )
    saga.finish(order_pb2.ORDER_STATUS_CONFIRMED)
    assert saga.final and not saga.order.failure_reason
    assert not saga.request.HasField("payment_method")
    assert saga.order.update_time.ToNanoseconds() > 0
