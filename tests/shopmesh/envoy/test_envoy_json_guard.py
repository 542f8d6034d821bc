"""The unknown-field guard's schema comes from the descriptors."""

from mesh import contracts
from shopmesh.envoy import json_guard


def test_path_templates_become_anchored_lua_patterns():
    assert json_guard.lua_pattern("/v1/orders") == "^/v1/orders$"
    assert json_guard.lua_pattern("/v1/orders/{id}:cancel") == "^/v1/orders/[^/]+:cancel$"
    assert json_guard.lua_pattern("/v1/{name=shelves/*}/books/**") == (
        "^/v1/shelves/[^/]+/books/.+$"
    )
    assert json_guard.lua_pattern("/v1/products:batch-get.x") == "^/v1/products:batch%-get%.x$"


def test_schema_covers_every_http_binding_with_a_body():
    routes, messages = json_guard.schema(contracts.services().values())
    with_body = {
        p.descriptor.input_type.full_name
        for s in contracts.services().values()
        for p in s.methods.values()
        if p.http is not None and p.http.body
    }
    assert {r["message"] for r in routes} == with_body
    place = messages["shop.order.v1.PlaceOrderRequest"]
    # proto3 JSON accepts both spellings of a field name.
    assert place["customerId"] is False and place["customer_id"] is False
    assert place["items"] == {"list": "shop.order.v1.OrderItem"}
    assert messages["google.type.PostalAddress"]["addressLines"] == {"list": False}
    assert set(messages["shop.order.v1.OrderItem"]) == {
        "productId",
        "product_id",
        "quantity",
    }
    assert messages["shop.payment.v1.PaymentMethod"]["card"] == "shop.payment.v1.CardToken"


def test_rendered_filter_carries_the_schema_and_the_lua_code():
    config = json_guard.render([contracts.service("order")])
    source = config["default_source_code"]["inline_string"]
    assert source.startswith("-- Generated from proto/")
    assert '["shop.order.v1.PlaceOrderRequest"]' in source
    assert "function envoy_on_request" in source
