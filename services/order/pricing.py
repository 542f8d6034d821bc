"""Pricing a cart from catalog products: exact integer arithmetic on google.type.Money."""

from __future__ import annotations

from collections.abc import Sequence

from google.type import money_pb2
from shop.catalog.v1 import catalog_pb2
from shop.order.v1 import order_pb2

from services.runtime.money import from_nanos, to_nanos

__all__ = ["PricingError", "price_cart"]


class PricingError(Exception):
    """The cart cannot be priced as one amount; `reason` is the order's failure reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def price_cart(
    items: Sequence[order_pb2.OrderItem], products: Sequence[catalog_pb2.Product]
) -> tuple[list[order_pb2.OrderLine], money_pb2.Money]:
    """Lines and total for `items`; `products` answer the items' product ids in order."""
    currencies = sorted({product.price.currency_code for product in products})
    if len(currencies) != 1:
        raise PricingError(
            "MIXED_CURRENCIES", f"the cart's products are priced in {', '.join(currencies)}"
        )
    currency = currencies[0]
    lines, total = [], 0
    for item, product in zip(items, products, strict=True):
        line_total = to_nanos(product.price) * item.quantity
        total += line_total
        lines.append(
            order_pb2.OrderLine(
                product_id=product.id,
                sku=product.sku,
                name=product.name,
                quantity=item.quantity,
                unit_price=product.price,
                line_total=from_nanos(currency, line_total),
            )
        )
    return lines, from_nanos(currency, total)
