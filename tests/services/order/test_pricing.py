"""Pricing a cart from catalog products: exact money, one currency."""

from __future__ import annotations

import pytest
from google.type import money_pb2
from shop.catalog.v1 import catalog_pb2
from shop.order.v1 import order_pb2

from services.order.pricing import PricingError, price_cart


def _product(product_id: str, units: int, nanos: int, currency: str = "USD"):
    price = money_pb2.Money(currency_code=currency, units=units, nanos=nanos)
    return catalog_pb2.Product(id=product_id, sku=product_id.upper(), name=product_id, price=price)


def test_lines_and_total_are_exact():
    items = [order_pb2.OrderItem(product_id="a", quantity=3), order_pb2.OrderItem(product_id="b")]
    items[1].quantity = 7
    lines, total = price_cart(
        items, [_product("a", 0, 100_000_000), _product("b", 19, 990_000_000)]
    )
    assert [(line.sku, line.quantity) for line in lines] == [("A", 3), ("B", 7)]
    assert (lines[0].line_total.units, lines[0].line_total.nanos) == (0, 300_000_000)
    assert (lines[1].line_total.units, lines[1].line_total.nanos) == (139, 930_000_000)
    assert (total.currency_code, total.units, total.nanos) == ("USD", 140, 230_000_000)
    assert lines[1].unit_price.units == 19


def test_a_cart_in_two_currencies_cannot_be_priced():
    items = [order_pb2.OrderItem(product_id=p, quantity=1) for p in ("a", "b")]
    with pytest.raises(PricingError) as caught:
        price_cart(items, [_product("a", 1, 0), _product("b", 1, 0, "EUR")])
    assert caught.value.reason == "MIXED_CURRENCIES"
