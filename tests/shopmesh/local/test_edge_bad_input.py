"""Each class of bad input a frontend once got a 5xx (or a wrong answer) for, through the
real edge: now a 4xx with a JSON google.rpc.Status naming the problem, nothing written."""

import uuid

import grpc
import pytest

from mesh import contracts

from .meshclient import Response, as_customer, order_body, orders_of, rest

pytestmark = pytest.mark.timeout(180)
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]


def _customer() -> str:
    return f"bad-input-{uuid.uuid4().hex[:8]}"


def _violations(response: Response) -> dict[str, str]:
    """The BadRequest field violations of a 400, by field."""
    assert response.status == 400, response.body
    status = response.json()
    assert status["code"] == INVALID_ARGUMENT, status
    (bad_request,) = [d for d in status["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    return {v["field"]: v["description"] for v in bad_request["fieldViolations"]}


# A percent-encoded byte that is no UTF-8 on its own, in each kind of parameter.
INVALID_UTF8 = {
    "product id": ("/v1/products/kitchen-%FF", "id", False),
    "search query": ("/v1/products:search?query=cup%FF", "query", False),
    "batch ids": ("/v1/products:batchGet?ids=kitchen-espresso-cup&ids=%C3%28", "ids[1]", False),
    "customer id": ("/v1/orders?customerId=%FFada", "customer_id", True),
    "order id": ("/v1/orders/%E2%82", "id", True),
}


@pytest.mark.parametrize("case", sorted(INVALID_UTF8))
def test_invalid_utf8_in_a_path_or_query_parameter_is_400_naming_the_field(mesh, case):
    path, field, needs_token = INVALID_UTF8[case]
    headers = as_customer(mesh, "ada") if needs_token else None
    response = rest(mesh, "GET", path, headers=headers)
    assert _violations(response) == {field: "is not valid UTF-8"}
    assert b"DecodeError" not in response.body and b"Unexpected" not in response.body


def test_a_nul_in_a_string_is_400_naming_the_field(mesh):
    # Valid UTF-8, which PostgreSQL cannot store: the order store failed on it (500).
    response = rest(mesh, "GET", "/v1/orders/a%00b", headers=as_customer(mesh, "ada"))
    assert _violations(response) == {"id": "must not contain NUL (U+0000)"}


def test_invalid_utf8_in_an_order_id_to_cancel_is_400_and_writes_nothing(mesh):
    customer = _customer()
    body = {"requestId": str(uuid.uuid4())}
    response = rest(mesh, "POST", "/v1/orders/%FF:cancel", body, as_customer(mesh, customer))
    assert _violations(response) == {"id": "is not valid UTF-8"}
    assert orders_of(mesh, customer) == []


# proto3's JSON mapping takes a list only as a JSON array; the transcoder took a single
# value as a list of one (and flattened nested arrays), placing CONFIRMED orders.
NOT_A_LIST = {
    "a string for address lines": ("shippingAddress", "addressLines", "1 Main St"),
    "a string for recipients": ("shippingAddress", "recipients", "Ada Lovelace"),
    "an object for items": (None, "items", {"productId": "kitchen-espresso-cup", "quantity": 1}),
    "nested arrays": ("shippingAddress", "recipients", [["Ada Lovelace"]]),
}


@pytest.mark.parametrize("case", sorted(NOT_A_LIST))
def test_a_json_value_where_the_contract_has_a_list_is_400_and_creates_nothing(mesh, case):
    parent, key, value = NOT_A_LIST[case]
    customer = _customer()
    body = order_body(customer)
    (body[parent] if parent else body)[key] = value
    response = rest(mesh, "POST", "/v1/orders", body, as_customer(mesh, customer))
    where = f"{parent}.{key}" if parent else key
    expected = (
        {f"{where}[0]": "must not be an array"}
        if isinstance(value, list)
        else {where: "must be a JSON array"}
    )
    assert _violations(response) == expected
    assert orders_of(mesh, customer) == []


@pytest.mark.parametrize("provider", [99, -1])
def test_an_undefined_enum_number_is_400_naming_the_field_and_creates_nothing(mesh, provider):
    customer = _customer()
    body = order_body(customer)
    body["paymentMethod"] = {"wallet": {"provider": provider, "token": "tok_visa"}}
    response = rest(mesh, "POST", "/v1/orders", body, as_customer(mesh, customer))
    violations = _violations(response)
    assert list(violations) == ["payment_method.wallet.provider"]
    assert f"{provider} is not a WalletProvider" in violations["payment_method.wallet.provider"]
    assert orders_of(mesh, customer) == []


def test_a_url_of_9000_characters_is_the_fields_400_not_a_429(mesh):
    for path, field in (
        ("/v1/products/" + "a" * 9000, "id"),
        ("/v1/products?pageToken=" + "a" * 9000, "page_token"),
    ):
        response = rest(mesh, "GET", path)
        assert field in _violations(response), response.body


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/products/" + "a" * 17_000, None),
        ("/v1/products:search?query=" + "a" * 40_000, None),
        ("/v1/products", {"x-note": "a" * 17_000}),
        ("/v1/orders/" + "a" * 70_000, None),
    ],
    ids=["long path", "long query", "large header", "70 KB path"],
)
def test_an_oversize_url_or_header_is_431_with_a_json_status(mesh, path, headers):
    response = rest(mesh, "GET", path, headers=headers)
    assert response.status == 431, response.body
    status = response.json()
    assert status["code"] == INVALID_ARGUMENT
    limit = mesh.edge_settings.max_request_headers_kb
    assert status["message"] == (
        f"the request's URL and headers together are larger than {limit} KiB"
    )


# Legal in HTTP, and passed on by the edge as gRPC metadata, which refused them in
# the service's gRPC library: INTERNAL, HTTP 500 with gRPC's own text.
BAD_HEADERS = {
    "a name gRPC does not allow": ("x-tag+v2", "1"),
    "another": ("pz+c&xs_ip", "1"),
    "binary metadata from a REST client": ("x-trace-bin", "aGk="),
    "a grpc-timeout without a unit": ("grpc-timeout", "2500"),
    "a grpc-timeout of 9 digits": ("grpc-timeout", "123456789S"),
}


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
def test_a_header_grpc_cannot_carry_is_400_naming_it(mesh, case):
    name, value = BAD_HEADERS[case]
    response = rest(mesh, "GET", "/v1/categories", headers={name: value})
    violations = _violations(response)
    assert list(violations) == [name], violations
    assert "Illegal header" not in response.body.decode()


def test_a_good_grpc_timeout_still_travels(mesh):
    assert rest(mesh, "GET", "/v1/categories", headers={"grpc-timeout": "2500m"}).status == 200


def test_a_grpc_message_over_the_body_limit_is_resource_exhausted_not_unknown(mesh):
    catalog = contracts.service("catalog")
    oversize = catalog.messages.GetProductRequest(id="a" * mesh.edge_settings.max_request_bytes)
    with (
        grpc.insecure_channel(mesh.edge_address) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        catalog.stub(channel).GetProduct(oversize, timeout=10)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.value
