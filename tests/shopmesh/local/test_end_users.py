"""End users through the real edge and sidecars: tokens, whose orders, per-customer limits.

Tokens are signed with the mesh's development key (mesh.tokens) or forged here
with PyJWT: every way a token can be wrong is a 401 with a WWW-Authenticate
header and a JSON google.rpc.Status, and only a valid token's subject is a
customer, at the edge and again at the order sidecar.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import json_format

from mesh import contracts
from services.order.access import OPERATOR_SCOPE
from services.runtime.end_user import CLAIMS_HEADER
from services.runtime.testing import end_user_metadata
from shopmesh.identity.tokens import ALGORITHM
from shopmesh.load import generator
from shopmesh.load.shoppers import RestShopper

from .conftest import CHECKOUT_BURST
from .meshclient import Response, as_customer, as_workload, order_body, rest

pytestmark = pytest.mark.timeout(240)
order = contracts.service("order")
HOUR = 3600


def _customer(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _order_calls(order_id: str) -> dict[str, tuple[str, str, dict | None]]:
    """Every order route of the edge, REST: name -> (method, path, body)."""
    return {
        "PlaceOrder": ("POST", "/v1/orders", order_body("ada")),
        "GetOrder": ("GET", f"/v1/orders/{order_id}", None),
        "ListOrders": ("GET", "/v1/orders", None),
        "CancelOrder": ("POST", f"/v1/orders/{order_id}:cancel", {"requestId": str(uuid.uuid4())}),
    }


def _assert_unauthenticated(response: Response) -> None:
    assert response.status == 401, response.body
    assert response.headers["www-authenticate"].startswith("Bearer"), dict(response.headers)
    status = response.json()
    assert status["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0], status
    assert status["message"], status


def _place(mesh, customer: str) -> dict:
    placed = rest(mesh, "POST", "/v1/orders", order_body(customer), as_customer(mesh, customer))
    assert placed.status == 200, placed.body
    return placed.json()["order"]


# -- who may call -----------------------------------------------------------------


@pytest.mark.parametrize("call", ["PlaceOrder", "GetOrder", "ListOrders", "CancelOrder"])
def test_without_a_token_every_order_route_is_401(mesh, call):
    method, path, body = _order_calls(str(uuid.uuid4()))[call]
    _assert_unauthenticated(rest(mesh, method, path, body))
    # A junk bearer header is not ignored either.
    _assert_unauthenticated(rest(mesh, method, path, body, _bearer("junk")))


def test_catalog_browsing_needs_no_token(mesh):
    for path in ("/v1/products?pageSize=2", "/v1/categories", "/v1/products/kitchen-chef-knife"):
        assert rest(mesh, "GET", path).status == 200, path
    # A token sent along must be a valid one, as Istio's RequestAuthentication has it.
    _assert_unauthenticated(rest(mesh, "GET", "/v1/categories", headers=_bearer("junk")))
    good = as_customer(mesh, "ada")
    assert rest(mesh, "GET", "/v1/categories", headers=good).status == 200


def test_without_a_token_grpc_through_the_edge_is_unauthenticated(mesh):
    catalog = contracts.service("catalog")
    with grpc.insecure_channel(mesh.edge_address) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            order.stub(channel).ListOrders(order.messages.ListOrdersRequest(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        listed = catalog.stub(channel).ListCategories(
            catalog.messages.ListCategoriesRequest(), timeout=5
        )
        assert listed.categories


def _other_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _bad_tokens(mesh) -> dict[str, str]:
    tokens = mesh.tokens
    now = time.time()
    kid = tokens.keys.kids()[-1]

    def signed(claims: dict, key=None, **header) -> str:
        if key is None:
            return tokens.keys.sign(claims, kid)
        return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid, **header})

    claims = tokens.claims("ada")
    return {
        "expired": signed(tokens.claims("ada", now=now - 2 * HOUR, ttl=HOUR)),
        "not yet valid": signed({**claims, "nbf": int(now + HOUR), "iat": int(now + HOUR)}),
        "wrong issuer": signed({**claims, "iss": "https://elsewhere.example"}),
        "wrong audience": signed({**claims, "aud": "another-api"}),
        "bad signature": signed(claims, key=_other_key()),
        "alg none": jwt.encode(claims, None, algorithm="none", headers={"kid": kid}),
        "a key not in the JWKS": signed(claims, key=_other_key(), kid="dev-99"),
        "symmetric HS256": jwt.encode(
            claims,
            "a secret shared with nobody at all: 32+ bytes",
            algorithm="HS256",
            headers={"kid": kid},
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "not yet valid",
        "wrong issuer",
        "wrong audience",
        "bad signature",
        "alg none",
        "a key not in the JWKS",
        "symmetric HS256",
    ],
)
def test_a_bad_token_is_401(mesh, case):
    token = _bad_tokens(mesh)[case]
    _assert_unauthenticated(rest(mesh, "GET", "/v1/orders", headers=_bearer(token)))
    body = order_body("ada")
    _assert_unauthenticated(rest(mesh, "POST", "/v1/orders", body, _bearer(token)))
    with grpc.insecure_channel(mesh.edge_address) as channel, pytest.raises(grpc.RpcError) as bad:
        order.stub(channel).ListOrders(
            order.messages.ListOrdersRequest(), metadata=_bearer(token).items(), timeout=5
        )
    assert bad.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_forged_scope_under_a_real_signature_is_refused(mesh):
    """Ada edits her own (valid) token to make herself an operator: the signature no
    longer matches, so the token is refused, not read."""
    bob_order = _place(mesh, _customer("bob"))
    header, payload, signature = mesh.tokens.token("ada").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = OPERATOR_SCOPE
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_payload}.{signature}"
    _assert_unauthenticated(
        rest(mesh, "GET", f"/v1/orders/{bob_order['id']}", headers=_bearer(forged))
    )


# -- whose orders -----------------------------------------------------------------


def test_ada_cannot_read_or_cancel_bobs_order(mesh):
    ada, bob = _customer("ada"), _customer("bob")
    bobs = _place(mesh, bob)
    as_ada = as_customer(mesh, ada)
    read = rest(mesh, "GET", f"/v1/orders/{bobs['id']}", headers=as_ada)
    missing = rest(mesh, "GET", f"/v1/orders/{uuid.uuid4()}", headers=as_ada)
    assert read.status == missing.status == 404
    assert read.json()["details"][0]["reason"] == missing.json()["details"][0]["reason"]
    cancel = {"requestId": str(uuid.uuid4()), "reason": "not mine"}
    cancelled = rest(mesh, "POST", f"/v1/orders/{bobs['id']}:cancel", cancel, as_ada)
    assert cancelled.status == 404, cancelled.body
    still = rest(mesh, "GET", f"/v1/orders/{bobs['id']}", headers=as_customer(mesh, bob))
    assert still.json()["order"]["status"] == "ORDER_STATUS_CONFIRMED"


def test_ada_cannot_place_an_order_for_bob(mesh):
    ada, bob = _customer("ada"), _customer("bob")
    response = rest(mesh, "POST", "/v1/orders", order_body(bob), as_customer(mesh, ada))
    assert response.status == 403, response.body
    status = response.json()
    assert status["code"] == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert status["details"][0]["reason"] == "CUSTOMER_MISMATCH"
    for who in (ada, bob):
        listed = rest(mesh, "GET", "/v1/orders", headers=as_customer(mesh, who)).json()
        assert listed["orders"] == [], who


def test_list_orders_returns_only_adas_orders(mesh):
    ada, bob = _customer("ada"), _customer("bob")
    adas = {_place(mesh, ada)["id"] for _ in range(2)}
    _place(mesh, bob)
    listed = rest(mesh, "GET", "/v1/orders?pageSize=100", headers=as_customer(mesh, ada))
    assert listed.status == 200
    assert {o["id"] for o in listed.json()["orders"]} == adas
    assert {o["customerId"] for o in listed.json()["orders"]} == {ada}
    others = rest(mesh, "GET", f"/v1/orders?customerId={bob}", headers=as_customer(mesh, ada))
    assert others.status == 403


def test_an_operator_token_reads_any_order(mesh):
    bob = _customer("bob")
    bobs = _place(mesh, bob)
    operator = as_customer(mesh, "olga", OPERATOR_SCOPE)
    read = rest(mesh, "GET", f"/v1/orders/{bobs['id']}", headers=operator)
    assert read.status == 200 and read.json()["order"] == bobs
    listed = rest(mesh, "GET", f"/v1/orders?customerId={bob}", headers=operator)
    assert [o["id"] for o in listed.json()["orders"]] == [bobs["id"]]
    # Reading is all: the order stays Bob's to cancel.
    cancel = {"requestId": str(uuid.uuid4())}
    refused = rest(mesh, "POST", f"/v1/orders/{bobs['id']}:cancel", cancel, operator)
    assert refused.status == 403, refused.body


def test_grpc_through_the_edge_acts_for_the_tokens_subject(mesh):
    ada, bob = _customer("ada"), _customer("bob")
    bobs = _place(mesh, bob)
    request = json_format.ParseDict(order_body(ada), order.messages.PlaceOrderRequest())
    request.customer_id = ""  # the token says who
    token = tuple(as_customer(mesh, ada).items())
    with grpc.insecure_channel(mesh.edge_address) as channel:
        stub = order.stub(channel)
        placed = stub.PlaceOrder(request, metadata=token, timeout=15).order
        assert placed.customer_id == ada
        with pytest.raises(grpc.RpcError) as hidden:
            stub.GetOrder(order.messages.GetOrderRequest(id=bobs["id"]), metadata=token, timeout=5)
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
        # A client's own copy of the claims header never reaches the app.
        forged = (*token, *end_user_metadata(bob))
        listed = stub.ListOrders(order.messages.ListOrdersRequest(), metadata=forged, timeout=5)
        assert [o.id for o in listed.orders] == [placed.id]


# -- at the order sidecar ----------------------------------------------------------


@pytest.mark.parametrize("workload", ["storefront-node", "ops", "edge"])
def test_an_allowed_workload_without_an_end_user_gets_no_customers_data(mesh, workload):
    customer = _customer("ada")
    placed = _place(mesh, customer)
    calls = {
        "ListOrders": order.messages.ListOrdersRequest(customer_id=customer),
        "GetOrder": order.messages.GetOrderRequest(id=placed["id"]),
    }
    # No token; and the claims header a sidecar would set, forged: stripped, so no token.
    for metadata in ((), end_user_metadata(customer, [OPERATOR_SCOPE])):
        for replica in mesh.replicas["order"]:
            with as_workload(mesh, workload, replica) as channel:
                stub = order.stub(channel)
                for name, request in calls.items():
                    with pytest.raises(grpc.RpcError) as refused:
                        getattr(stub, name)(request, metadata=metadata, timeout=5)
                    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, name


def test_the_order_sidecar_checks_the_token_itself(mesh):
    customer = _customer("ada")
    placed = _place(mesh, customer)
    replica = mesh.replica("order", 0)
    with as_workload(mesh, "storefront-node", replica) as channel:
        stub = order.stub(channel)
        request = order.messages.GetOrderRequest(id=placed["id"])
        token = tuple(as_customer(mesh, customer).items())
        assert stub.GetOrder(request, metadata=token, timeout=5).order.id == placed["id"]
        with pytest.raises(grpc.RpcError) as refused:
            bad = (("authorization", f"Bearer {_bad_tokens(mesh)['bad signature']}"),)
            stub.GetOrder(request, metadata=bad, timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # Another customer's valid token plus a forged claims header naming the owner.
        other = (*as_customer(mesh, _customer("eve")).items(), (CLAIMS_HEADER, "forged"))
        with pytest.raises(grpc.RpcError) as hidden:
            stub.GetOrder(request, metadata=other, timeout=5)
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND


# -- key rotation -------------------------------------------------------------------


def test_a_second_key_works_once_the_jwks_holds_it_and_stops_when_removed(mesh):
    keys = mesh.tokens.keys
    first = keys.kids()[-1]
    customer = _customer("rotating")

    def status(token: str) -> int:
        return rest(mesh, "GET", "/v1/orders", headers=_bearer(token)).status

    old = mesh.tokens.token(customer, kid=first)
    second = keys.add_key()
    try:
        new = mesh.tokens.token(customer, kid=second)
        assert len(json.loads(keys.jwks_path.read_text())["keys"]) == 2
        assert status(new) == 401  # the proxies have not read the new JWKS yet
        mesh.reload_token_keys()
        assert (status(old), status(new)) == (200, 200)
        # And at the order sidecar too, not only at the edge.
        with as_workload(mesh, "storefront-node", mesh.replica("order", 1)) as channel:
            listed = order.stub(channel).ListOrders(
                order.messages.ListOrdersRequest(), metadata=_bearer(new).items(), timeout=5
            )
            assert list(listed.orders) == []
    finally:
        keys.retire(second)
        mesh.reload_token_keys()
    assert [k["kid"] for k in json.loads(keys.jwks_path.read_text())["keys"]] == [first]
    assert (status(old), status(new)) == (200, 401)


# -- limits per customer -------------------------------------------------------------


def test_one_customer_over_the_limit_gets_429_while_another_checks_out(mesh):
    greedy, patient = _customer("bot"), _customer("ada")
    calls = [(greedy, order_body(greedy)) for _ in range(3 * CHECKOUT_BURST)]
    calls[::CHECKOUT_BURST] = [(patient, order_body(patient)) for _ in range(3)]

    def send(call):
        who, body = call
        return who, rest(mesh, "POST", "/v1/orders", body, as_customer(mesh, who))

    with ThreadPoolExecutor(len(calls)) as pool:
        answered = list(pool.map(send, calls))
    greedy_codes = [r.status for who, r in answered if who == greedy]
    patient_codes = [r.status for who, r in answered if who == patient]
    assert patient_codes == [200, 200, 200], patient_codes
    assert 429 in greedy_codes and set(greedy_codes) <= {200, 429}, greedy_codes
    limited = next(r for who, r in answered if r.status == 429)
    status = limited.json()
    assert status["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert status["details"] == [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.000s"}
    ]
    assert limited.headers["retry-after"] == "1"
    assert limited.headers["x-ratelimit-limit"] == str(CHECKOUT_BURST)


async def test_the_shopper_mix_at_30_checkouts_a_second_gets_no_429(mesh):
    """Many customers checking out at 30/s in all, each well within their own limit (the
    old single bucket for everyone answered 429 to most of them). Short form: 4 s."""
    mix = {"checkout": 0.6, "product": 0.2, "order_lookup": 0.2}  # 30 checkouts/s at 50/s
    plan = generator.LoadPlan(rate=50, duration=4, mix=mix, seed=15)
    async with aiohttp.ClientSession() as session:
        shopper = RestShopper(mesh.edge_url, session, mesh.tokens)
        recorder = await generator.run(shopper, plan, progress=None)
    checkouts = recorder.outcomes["checkout"]
    assert sum(checkouts.values()) >= 100, checkouts
    assert recorder.errors == 0 and recorder.dropped == 0, dict(recorder.outcomes)
    assert recorder.outcomes["order_lookup"]["OK"] > 0  # lookups by the orders' owners
