"""The checkout saga's state: an order resource plus what the saga needs to finish it.

A saga is persisted as one row (see store.py). `step` names the next action the
saga will take and is written *before* that action runs, so whoever resumes a
saga after a crash repeats the interrupted action. Every action is idempotent
upstream because its request_id is derived from the order id (see
`action_request_id`): a repeated action returns the first answer.
"""

from __future__ import annotations

import enum
import hashlib
import time
import uuid
from dataclasses import dataclass, field

from shop.order.v1 import order_pb2

__all__ = [
    "FINAL_STATUSES",
    "Saga",
    "Step",
    "action_request_id",
    "fingerprint",
    "new_saga",
]

FINAL_STATUSES = frozenset(
    {
        order_pb2.ORDER_STATUS_CONFIRMED,
        order_pb2.ORDER_STATUS_FAILED,
        order_pb2.ORDER_STATUS_CANCELLED,
    }
)


class Step(enum.StrEnum):
    """The next action of a saga in flight.

    Checkout goes PRICE -> RESERVE -> CHARGE -> COMMIT -> (CONFIRMED). A failure
    switches to compensation: RELEASE (a held or possibly held reservation),
    then REFUND if a charge was or may have been captured, then FAILED. Stock
    goes back first so that an unreachable payment service never keeps it held.
    Cancelling a confirmed order reuses RELEASE -> REFUND and ends CANCELLED.
    """

    PRICE = "PRICE"
    RESERVE = "RESERVE"
    CHARGE = "CHARGE"
    COMMIT = "COMMIT"
    REFUND = "REFUND"
    RELEASE = "RELEASE"

    @property
    def compensating(self) -> bool:
        return self in (Step.REFUND, Step.RELEASE)

    @property
    def upstream(self) -> str:
        """The service this step calls."""
        return _STEP_UPSTREAMS[self]


_STEP_UPSTREAMS = {
    Step.PRICE: "catalog",
    Step.RESERVE: "inventory",
    Step.CHARGE: "payment",
    Step.COMMIT: "inventory",
    Step.RELEASE: "inventory",
    Step.REFUND: "payment",
}


@dataclass
class Saga:
    """One order and the state of the saga that creates (or cancels) it."""

    # The resource as clients see it.
    order: order_pb2.Order
    # The checkout as the client asked for it. Its payment method is wiped once
    # the order is final: a token is kept only while a charge may still be sent.
    request: order_pb2.PlaceOrderRequest
    # Identifies the request apart from request_id (see fingerprint()).
    fingerprint: str
    # Next action; None when nothing is in flight.
    step: Step | None = Step.PRICE
    # True from the moment a charge may be sent until it is known to be declined:
    # undoing the order must then refund (or first find out) the charge.
    refund_due: bool = False
    # Why the saga is compensating; copied to the order when it ends FAILED.
    failure_reason: str = ""
    failure_message: str = ""
    # Why a confirmed order is being cancelled (passed on to the refund).
    cancel_reason: str = ""
    # Set by the store: who runs the saga and until when (epoch seconds).
    owner: str | None = field(default=None, compare=False)
    lease_expires: float | None = field(default=None, compare=False)
    # The fencing token of the owner's claim (see store.py): its writes must name it.
    lease_token: int = field(default=0, compare=False)
    # Set when the saga gives up learning its charge's outcome: the save that ends
    # it also opens a reconciliation record, so the money is never forgotten.
    reconcile_charge: bool = field(default=False, compare=False)
    # True when this run picked the saga up from an earlier one (recovery, a retried
    # request): time may have passed since its last step.
    resumed: bool = field(default=False, compare=False)

    @property
    def id(self) -> str:
        return self.order.id

    @property
    def final(self) -> bool:
        return self.step is None and self.order.status in FINAL_STATUSES

    def touch(self) -> None:
        self.order.update_time.FromNanoseconds(time.time_ns())

    def finish(self, status: int) -> None:
        """Ends the saga: the order reaches `status` and the payment token is forgotten."""
        self.step = None
        self.order.status = status
        if status == order_pb2.ORDER_STATUS_FAILED:
            self.order.failure_reason = self.failure_reason
            self.order.failure_message = self.failure_message
        self.request.ClearField("payment_method")
        self.touch()

    def fail(self, reason: str, message: str, step: Step | None) -> None:
        """Records why the checkout failed and where compensation starts (None: nothing to undo)."""
        self.failure_reason, self.failure_message = reason, message
        if step is None:
            self.finish(order_pb2.ORDER_STATUS_FAILED)
        else:
            self.step = step


def fingerprint(request: order_pb2.PlaceOrderRequest) -> str:
    """Digest of everything a checkout asks for except its request_id.

    The same request_id with the same fingerprint is a retry; with another one it
    is a different checkout reusing the id.
    """
    copy = order_pb2.PlaceOrderRequest()
    copy.CopyFrom(request)
    copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def new_saga(request: order_pb2.PlaceOrderRequest) -> Saga:
    """A PENDING order for a validated checkout request, about to be priced."""
    order = order_pb2.Order(
        id=str(uuid.uuid4()),
        customer_id=request.customer_id,
        status=order_pb2.ORDER_STATUS_PENDING,
    )
    order.shipping_address.CopyFrom(request.shipping_address)
    now = time.time_ns()
    order.create_time.FromNanoseconds(now)
    order.update_time.FromNanoseconds(now)
    saved = order_pb2.PlaceOrderRequest()
    saved.CopyFrom(request)
    return Saga(order=order, request=saved, fingerprint=fingerprint(request))


def action_request_id(order_id: str, action: str) -> str:
    """The request_id of one upstream action of an order's saga.

    Derived (UUIDv5 in the order id's namespace), never random, so a resumed
    saga sends the same id and the upstream deduplicates the repeat.
    """
    return str(uuid.uuid5(uuid.UUID(order_id), action))
