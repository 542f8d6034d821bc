"""Whose orders a call may see and change: the end user the order sidecar verified.

The order service enforces this itself, whatever the proxies in front of it
did: a call without a verified end user (services/runtime/end_user.py) gets
nothing (UNAUTHENTICATED). A customer acts only for themselves: naming another
customer is PERMISSION_DENIED, and another customer's order is NOT_FOUND with
the very error a missing order gets, so ids cannot be probed. A token with the
operator scope may read any customer's orders, never change them.
"""

from __future__ import annotations

import grpc
from shop.order.v1 import order_pb2

from services.runtime.end_user import EndUser, require_end_user
from services.runtime.errors import NotFound, PermissionDenied

__all__ = [
    "OPERATOR_SCOPE",
    "caller",
    "check_change",
    "check_read",
    "customer_for",
    "unknown_order",
]

OPERATOR_SCOPE = "shop.ops"


def caller(context: grpc.aio.ServicerContext) -> EndUser:
    """The end user the call acts for, or UNAUTHENTICATED."""
    return require_end_user(context)


def unknown_order(order_id: str) -> NotFound:
    """The one answer for an order that does not exist or is not the caller's."""
    return NotFound(f"no order with id {order_id!r}", metadata={"id": order_id})


def customer_for(user: EndUser, requested: str, *, reading: bool) -> str:
    """The customer a call acts for: the caller, which an empty `requested` means.

    Another customer only for an operator's read; otherwise PERMISSION_DENIED
    (the caller named them, so nothing is revealed by saying no).
    """
    if not requested or requested == user.subject:
        return user.subject
    if reading and user.may(OPERATOR_SCOPE):
        return requested
    raise PermissionDenied(
        f"customer_id {requested!r} is not the caller: a customer acts only for themselves"
        + (
            f" (reading another customer's orders needs the {OPERATOR_SCOPE} scope)"
            if reading
            else ""
        ),
        reason="CUSTOMER_MISMATCH",
        metadata={"customer_id": requested},
    )


def check_read(user: EndUser, order: order_pb2.Order) -> None:
    if order.customer_id != user.subject and not user.may(OPERATOR_SCOPE):
        raise unknown_order(order.id)


def check_change(user: EndUser, order: order_pb2.Order) -> None:
    check_read(user, order)
    if order.customer_id != user.subject:
        raise PermissionDenied(
            f"order {order.id} is not the caller's: operators read other customers' orders,"
            " only the customer changes them",
            reason="NOT_ORDER_OWNER",
            metadata={"order_id": order.id},
        )
