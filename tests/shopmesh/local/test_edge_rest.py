"""REST/JSON (and gRPC) through the edge of the running mesh: what a frontend sees."""

import json
import time
import uuid

import grpc
import pytest

from mesh import contracts
from shopmesh.envoy import openapi

from .conftest import CHECKOUT_PER_SECOND
from .meshclient import Response, as_customer, order_body, orders_of, rest

pytestmark = pytest.mark.timeout(180)
PRODUCT = "kitchen-espresso-cup"


def checkout(mesh, body, customer: str | None = None) -> Response:
    """POST /v1/orders with the token of `customer` (default: the one the body names),
    waiting out the edge's checkout rate limit (429) as a client would."""
    token = as_customer(mesh, customer or body["customerId"])
    for _ in range(30):
        response = rest(mesh, "POST", "/v1/orders", body, token)
        if response.status != 429:
            return response
        time.sleep(1 / CHECKOUT_PER_SECOND)
    return response


def test_list_products_a_page_at_a_time(mesh):
    first = rest(mesh, "GET", "/v1/products?pageSize=2")
    assert first.status == 200
    page = first.json()
    assert len(page["products"]) == 2 and page["nextPageToken"]
    second = rest(mesh, "GET", f"/v1/products?pageSize=2&pageToken={page['nextPageToken']}")
    assert second.status == 200
    ids = [p["id"] for p in page["products"] + second.json()["products"]]
    assert len(set(ids)) == 4


def test_list_products_of_a_category_and_categories(mesh):
    categories = rest(mesh, "GET", "/v1/categories").json()["categories"]
    kitchen = next(c for c in categories if c["id"] == "kitchen")
    listed = rest(mesh, "GET", "/v1/products?category=kitchen&pageSize=100").json()
    assert len(listed["products"]) == kitchen["productCount"] == listed["totalSize"]
    assert {p["category"] for p in listed["products"]} == {"kitchen"}


def test_search_products(mesh):
    found = rest(mesh, "GET", "/v1/products:search?query=espresso").json()
    assert PRODUCT in [p["id"] for p in found["products"]]


def test_get_a_product_with_money_as_json(mesh):
    response = rest(mesh, "GET", f"/v1/products/{PRODUCT}")
    assert response.status == 200
    product = response.json()["product"]
    assert product["id"] == PRODUCT
    assert product["price"]["currencyCode"] == "USD"
    assert int(product["price"]["units"]) > 0


def test_an_unknown_product_is_404_with_a_json_status(mesh):
    response = rest(mesh, "GET", "/v1/products/no-such-product")
    assert response.status == 404
    status = response.json()
    assert status["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert "no-such-product" in status["message"]
    assert status["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"


def test_batch_get_products_in_the_order_asked(mesh):
    ids = ["kitchen-chef-knife", PRODUCT, "kitchen-chef-knife"]
    response = rest(mesh, "GET", "/v1/products:batchGet?" + "&".join(f"ids={i}" for i in ids))
    assert response.status == 200, response.body
    products = response.json()["products"]
    assert [p["id"] for p in products] == ids  # repeated ids are answered once per occurrence
    assert products[1] == rest(mesh, "GET", f"/v1/products/{PRODUCT}").json()["product"]


def test_batch_get_with_an_unknown_id_is_404_naming_every_missing_id(mesh):
    query = f"ids={PRODUCT}&ids=no-such-product&ids=nor-this-one&ids=no-such-product"
    response = rest(mesh, "GET", f"/v1/products:batchGet?{query}")
    assert response.status == 404, response.body
    status = response.json()
    assert status["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert "no-such-product, nor-this-one" in status["message"]
    assert PRODUCT not in status["message"]
    info = status["details"][0]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert info["metadata"]["missing_ids"] == "no-such-product,nor-this-one"


def test_place_an_order_and_get_it(mesh):
    customer = f"ada-{uuid.uuid4().hex[:8]}"
    placed = checkout(mesh, order_body(customer, PRODUCT, 2))
    assert placed.status == 200, placed.body
    order = placed.json()["order"]
    assert order["status"] == "ORDER_STATUS_CONFIRMED"
    assert order["lines"][0]["quantity"] == 2
    assert order["paymentId"] and order["reservationId"]
    fetched = rest(mesh, "GET", f"/v1/orders/{order['id']}", headers=as_customer(mesh, customer))
    assert fetched.status == 200
    assert fetched.json()["order"] == order
    assert [o["id"] for o in orders_of(mesh, customer)] == [order["id"]]


def test_a_retried_checkout_returns_the_same_order(mesh):
    customer = f"bob-{uuid.uuid4().hex[:8]}"
    body = order_body(customer)
    first = checkout(mesh, body).json()["order"]
    again = checkout(mesh, body).json()["order"]
    assert again["id"] == first["id"]
    assert len(orders_of(mesh, customer)) == 1


def test_an_order_for_an_unknown_product_is_404_and_creates_nothing(mesh):
    customer = f"eve-{uuid.uuid4().hex[:8]}"
    response = checkout(mesh, order_body(customer, "no-such-product"))
    assert response.status == 404, response.body
    status = response.json()
    assert status["code"] == 5 and "no-such-product" in status["message"]
    assert status["details"][0]["reason"] == "PRODUCT_NOT_FOUND"
    assert orders_of(mesh, customer) == []


def truncated(body: dict) -> bytes:
    """`body` as JSON without its closing brace: complete but for the last byte."""
    return json.dumps(body)[:-1].encode()


BAD_CHECKOUTS = {
    "malformed JSON": truncated,
    "unknown field": {"bogus": True},
    "unknown nested field": {"items": [{"productId": PRODUCT, "quantity": 1, "colour": "red"}]},
    "wrong type": {"items": [{"productId": PRODUCT, "quantity": "two"}]},
    "missing required field": {"shippingAddress": None},
}


@pytest.mark.parametrize("case", sorted(BAD_CHECKOUTS))
def test_a_bad_checkout_is_400_with_a_json_status_and_creates_nothing(mesh, case):
    customer = f"bad-{uuid.uuid4().hex[:8]}"
    change = BAD_CHECKOUTS[case]
    body = order_body(customer)
    if callable(change):
        body = change(body)  # every field of a good checkout for `customer` is still there
    else:
        body.update(change)
        body = {k: v for k, v in body.items() if v is not None}
    response = checkout(mesh, body, customer)
    assert response.status == 400, response.body
    status = response.json()
    assert status["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status["message"]
    assert orders_of(mesh, customer) == []


def confirmed_order(mesh, who: str) -> dict:
    placed = checkout(mesh, order_body(f"{who}-{uuid.uuid4().hex[:8]}"))
    assert placed.status == 200, placed.body
    order = placed.json()["order"]
    assert order["status"] == "ORDER_STATUS_CONFIRMED"
    return order


def test_cancel_a_confirmed_order_and_again_with_the_same_request_id(mesh):
    order = confirmed_order(mesh, "cancel")
    owner = as_customer(mesh, order["customerId"])
    body = {"requestId": str(uuid.uuid4()), "reason": "changed my mind"}
    cancelled = rest(mesh, "POST", f"/v1/orders/{order['id']}:cancel", body, owner)
    assert cancelled.status == 200, cancelled.body
    after = cancelled.json()["order"]
    assert after["id"] == order["id"]
    assert after["status"] == "ORDER_STATUS_CANCELLED"
    assert after["lines"] == order["lines"] and after["total"] == order["total"]
    assert rest(mesh, "GET", f"/v1/orders/{order['id']}", headers=owner).json()["order"] == after
    again = rest(mesh, "POST", f"/v1/orders/{order['id']}:cancel", body, owner)
    assert again.status == 200, again.body
    assert again.json()["order"] == after  # returned unchanged, update_time included


BAD_CANCELS = {
    "unknown field": {"refundTo": "elsewhere"},
    "wrong type": {"reason": {"text": "changed my mind"}},
    "wrong type of request id": {"requestId": 5},
    "missing request id": {"requestId": None},
}


@pytest.mark.parametrize("case", sorted(BAD_CANCELS))
def test_a_bad_cancel_is_400_and_leaves_the_order_confirmed(mesh, case):
    order = confirmed_order(mesh, f"keep-{case.replace(' ', '-')}")
    body = {"requestId": str(uuid.uuid4()), "reason": "changed my mind", **BAD_CANCELS[case]}
    body = {k: v for k, v in body.items() if v is not None}
    owner = as_customer(mesh, order["customerId"])
    response = rest(mesh, "POST", f"/v1/orders/{order['id']}:cancel", body, owner)
    assert response.status == 400, response.body
    status = response.json()
    assert status["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status["message"]
    assert rest(mesh, "GET", f"/v1/orders/{order['id']}", headers=owner).json()["order"] == order


def test_unknown_fields_are_named_in_the_error(mesh):
    body = order_body("named")
    body["items"][0]["quantiy"] = 3
    body["giftWrap"] = True
    status = checkout(mesh, body).json()
    violations = status["details"][0]["fieldViolations"]
    assert [v["field"] for v in violations] == ["giftWrap", "items[0].quantiy"]


def test_unknown_query_parameters_and_paths_are_rejected(mesh):
    assert rest(mesh, "GET", "/v1/products?colour=red").status == 400
    missing = rest(mesh, "GET", "/v1/nothing-here")
    assert missing.status == 404
    assert missing.json()["code"] == grpc.StatusCode.NOT_FOUND.value[0]


def test_a_body_over_the_limit_is_413(mesh):
    body = order_body("big")
    body["shippingAddress"]["addressLines"] = ["x" * (mesh.edge_settings.max_request_bytes + 1)]
    response = checkout(mesh, body)
    assert response.status == 413
    assert response.json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


def test_cors_preflight_allows_local_origins_only(mesh):
    preflight = {"access-control-request-method": "POST", "origin": "http://localhost:5173"}
    allowed = rest(mesh, "OPTIONS", "/v1/orders", headers=preflight)
    assert allowed.status == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    preflight["origin"] = "https://evil.example"
    refused = rest(mesh, "OPTIONS", "/v1/orders", headers=preflight)
    assert "access-control-allow-origin" not in refused.headers
    simple = rest(mesh, "GET", "/v1/categories", headers={"origin": "http://127.0.0.1:3000"})
    assert simple.headers["access-control-allow-origin"] == "http://127.0.0.1:3000"


def test_native_grpc_clients_use_the_same_edge_port(mesh):
    catalog = contracts.service("catalog")
    with grpc.insecure_channel(mesh.edge_address) as channel:
        stub = catalog.stub(channel)
        product = stub.GetProduct(catalog.messages.GetProductRequest(id=PRODUCT), timeout=5)
        assert product.product.id == PRODUCT
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetProduct(catalog.messages.GetProductRequest(id="nope"), timeout=5)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_internal_rpcs_are_not_reachable_through_the_edge(mesh):
    inventory = contracts.service("inventory")
    request = inventory.messages.GetStockRequest(sku="KIT-1001")
    with (
        grpc.insecure_channel(mesh.edge_address) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        inventory.stub(channel).GetStock(request, timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_requests_are_access_logged_as_json(mesh):
    marker = f"logged-{uuid.uuid4().hex}"
    rest(mesh, "GET", f"/v1/products/{marker}")
    entry = _logged(mesh.layout.logs / "edge.access.log", lambda e: marker in (e["path"] or ""))
    assert entry["proxy"] == "edge"
    assert entry["path"] == f"/v1/products/{marker}"
    assert entry["grpc_method"] == "/shop.catalog.v1.CatalogService/GetProduct"
    assert entry["status"] == 404
    assert entry["request_id"]


def _logged(path, match, timeout: float = 10) -> dict:
    """The first JSON access-log entry of `path` that `match` accepts (Envoy flushes ~1/s)."""
    deadline = time.monotonic() + timeout
    while True:
        for line in path.read_text().splitlines() if path.exists() else []:
            entry = json.loads(line)
            if match(entry):
                return entry
        assert time.monotonic() < deadline, f"no matching entry in {path.name}"
        time.sleep(0.1)


def test_a_rest_callers_deadline_travels_through_the_edge_to_the_service(mesh):
    marker = f"deadline-{uuid.uuid4().hex}"
    response = rest(mesh, "GET", f"/v1/products/{marker}", headers={"grpc-timeout": "2500m"})
    assert response.status == 404
    edge = _logged(mesh.layout.logs / "edge.access.log", lambda e: marker in (e["path"] or ""))
    assert edge["grpc_timeout"] == "2500m"
    # The catalog replica's sidecar got the same request (same x-request-id) with it.
    sidecars = [mesh.layout.logs / f"{r.name}.access.log" for r in mesh.replicas["catalog"]]
    deadline = time.monotonic() + 10
    found = []
    while not found and time.monotonic() < deadline:
        found = [
            entry
            for log in sidecars
            if log.exists()
            for entry in map(json.loads, log.read_text().splitlines())
            if entry["request_id"] == edge["request_id"]
        ]
        time.sleep(0.1)
    assert [e["grpc_timeout"] for e in found] == ["2500m"], found


def test_the_edge_serves_its_openapi_description_to_anyone(mesh):
    response = rest(mesh, "GET", openapi.PATH, headers={"origin": "http://localhost:3000"})
    assert response.status == 200
    assert response.body == openapi.committed().read_bytes()
    assert response.headers["content-type"] == "application/json"
    assert response.headers["access-control-allow-origin"] == "*"
    assert json.loads(response.body)["info"]["title"] == "shopmesh REST API"
    # A bad token is no reason to refuse a public document.
    assert rest(mesh, "GET", openapi.PATH, headers={"authorization": "Bearer x"}).status == 200
