"""Input rules of OrderService requests (see proto/shop/order/v1/order.proto).

Each function reports every problem of a request at once (INVALID_ARGUMENT with
one field violation per problem) before anything is read or written.
"""

from __future__ import annotations

import re
import uuid

from shop.order.v1 import order_pb2

from services.runtime.paging import decode_page_token
from services.runtime.validation import MAX_ID_LENGTH, Violations

__all__ = [
    "check_cancel",
    "check_get",
    "check_list",
    "check_place",
    "list_filter",
]

MAX_ITEMS = 50
MAX_QUANTITY = 100
MAX_REASON_LENGTH = 200
# Bounds on free text that ends up stored with every order.
MAX_ADDRESS_LINES = 5
MAX_ADDRESS_TEXT = 200
_REGION = re.compile(r"[A-Z]{2}")


def _request_id(violations: Violations, value: str, field: str = "request_id") -> None:
    if violations.required(value, field, max_length=64):
        try:
            uuid.UUID(value)
        except ValueError:
            violations.add(field, "must be a UUID")


def _texts(violations: Violations, values, field: str, *, low: int, high: int) -> None:
    """A repeated string with `low` to `high` non-blank entries, each of bounded length."""
    if not violations.count(values, field, low, high):
        return
    for index, value in enumerate(values):
        violations.required(value, f"{field}[{index}]", max_length=MAX_ADDRESS_TEXT)


def _shipping_address(violations: Violations, request: order_pb2.PlaceOrderRequest) -> None:
    if not request.HasField("shipping_address"):
        violations.add("shipping_address", "is required")
        return
    address = request.shipping_address
    if not _REGION.fullmatch(address.region_code):
        violations.add("shipping_address.region_code", "must be a CLDR region code such as US")
    _texts(
        violations,
        address.address_lines,
        "shipping_address.address_lines",
        low=1,
        high=MAX_ADDRESS_LINES,
    )
    _texts(
        violations, address.recipients, "shipping_address.recipients", low=1, high=MAX_ADDRESS_LINES
    )
    for name in ("postal_code", "administrative_area", "locality", "organization"):
        violations.max_length(getattr(address, name), f"shipping_address.{name}", 100)


def _payment_method(violations: Violations, request: order_pb2.PlaceOrderRequest) -> None:
    method = request.payment_method
    kind = method.WhichOneof("kind") if request.HasField("payment_method") else None
    if kind is None:
        violations.add("payment_method", "is required: set card or wallet")
    elif kind == "card":
        violations.payment_token(method.card.token, "payment_method.card.token")
    else:
        if method.wallet.provider == 0:
            violations.add("payment_method.wallet.provider", "is required")
        violations.payment_token(method.wallet.token, "payment_method.wallet.token")


def check_place(request: order_pb2.PlaceOrderRequest) -> None:
    """customer_id is the caller's by now (access.customer_for); it is stored as an id."""
    violations = Violations()
    violations.max_length(request.customer_id, "customer_id", MAX_ID_LENGTH)
    if violations.count(request.items, "items", 1, MAX_ITEMS):
        for index, item in enumerate(request.items):
            violations.required(item.product_id, f"items[{index}].product_id")
            violations.in_range(item.quantity, f"items[{index}].quantity", 1, MAX_QUANTITY)
        violations.distinct(request.items, "items", key=lambda item: item.product_id)
    _shipping_address(violations, request)
    _payment_method(violations, request)
    _request_id(violations, request.request_id)
    violations.check()


def check_get(request: order_pb2.GetOrderRequest) -> None:
    violations = Violations()
    violations.required(request.id, "id")
    violations.check()


def list_filter(request: order_pb2.ListOrdersRequest) -> dict[str, str]:
    """What a ListOrders page token is bound to."""
    return {"rpc": "ListOrders", "customer_id": request.customer_id}


def check_list(request: order_pb2.ListOrdersRequest) -> tuple[int, tuple[int, str] | None]:
    """The page size to use and where to continue: (create time ns, id) of the last order
    of the previous page, or None for the first page."""
    violations = Violations()
    size = violations.page_size(request.page_size)
    position = decode_page_token(request.page_token, list_filter(request), violations)
    after = None
    if position is not None:
        if (
            isinstance(position, list)
            and len(position) == 2
            and isinstance(position[0], int)
            and isinstance(position[1], str)
        ):
            after = (position[0], position[1])
        else:
            violations.add("page_token", "is not a page token this server issued")
    violations.check()
    return size, after


def check_cancel(request: order_pb2.CancelOrderRequest) -> None:
    violations = Violations()
    violations.required(request.id, "id")
    violations.max_length(request.reason, "reason", MAX_REASON_LENGTH)
    _request_id(violations, request.request_id)
    violations.check()
