"""A valid PlaceOrderRequest to start from (tests change one thing at a time)."""

from __future__ import annotations

import uuid

from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2


def place_request(
    *items: tuple[str, int], customer_id: str = "cust-1", token: str = "tok_visa"
) -> order_pb2.PlaceOrderRequest:
    request = order_pb2.PlaceOrderRequest(
        customer_id=customer_id,
        items=[
            order_pb2.OrderItem(product_id=product, quantity=quantity)
            for product, quantity in items or [("kitchen-espresso-cup", 2)]
        ],
        payment_method=payment_pb2.PaymentMethod(card=payment_pb2.CardToken(token=token)),
        request_id=str(uuid.uuid4()),
    )
    address = request.shipping_address
    address.region_code = "US"
    address.address_lines.append("1 Main St")
    address.recipients.append("Ada Lovelace")
    return request
