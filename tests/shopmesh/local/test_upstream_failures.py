"""Upstream failures through the real edge: every answer is a JSON google.rpc.Status of
ours, never a proxy's own text, and a checkout caught by a payment outage names its
order, then settles once payment is back (its charge closed: nothing taken).

A mesh of its own (one replica per service): these tests stop replicas.
"""

from __future__ import annotations

import time

import grpc
import pytest

from mesh import contracts
from shopmesh.envoy.edge import UNAVAILABLE_MESSAGE, EdgeSettings
from shopmesh.local.mesh import LocalMesh

from .meshclient import as_customer, order_body, rest

ONE_EACH = {"catalog": 1, "inventory": 1, "payment": 1, "order": 1}
PROXY_TEXTS = ("upstream connect error", "reset before headers", "no healthy upstream",
               "upstream request timeout", "connection failure")  # fmt: skip
SETTLE_WITHIN = 20.0
# What the edge, or the order sidecar in front of a dead app, says instead of Envoy.
OURS = {UNAVAILABLE_MESSAGE, "the order service could not answer now"}


@pytest.fixture(scope="module")
def small_mesh(tmp_path_factory):
    with LocalMesh(
        tmp_path_factory.mktemp("failures"),
        replicas=ONE_EACH,
        edge_settings=EdgeSettings(port=0),
        drain_seconds=0.5,
        app_env={"SHOPMESH_ORDER_RECOVERY_SECONDS": "0.5", "SHOPMESH_ORDER_LEASE_SECONDS": "2"},
    ) as running:
        yield running


def _status(response) -> dict:
    status = response.json()
    assert {"code", "message"} <= set(status), status
    assert not any(text in status["message"] for text in PROXY_TEXTS), status["message"]
    return status


def _order_id(status: dict) -> str:
    for detail in status.get("details", []):
        if detail.get("@type", "").endswith("google.rpc.ErrorInfo"):
            return detail.get("metadata", {}).get("order_id", "")
    return ""


def test_a_checkout_during_a_payment_outage_names_its_order_and_settles_after(small_mesh):
    customer = as_customer(small_mesh, "ada")
    body = order_body("ada")
    small_mesh.kill("payment", 0)
    try:
        first = rest(small_mesh, "POST", "/v1/orders", body, headers=customer)
        assert first.status == 503, first.body
        order_id = _order_id(_status(first))
        assert order_id, f"the first caller must learn its order: {first.body!r}"
    finally:
        small_mesh.restart("payment", 0)
    deadline = time.monotonic() + SETTLE_WITHIN
    while True:  # the shopper retries the same request: same order, now final
        again = rest(small_mesh, "POST", "/v1/orders", body, headers=customer)
        if again.status == 200 or time.monotonic() > deadline:
            break
        _status(again)
        time.sleep(0.5)
    assert again.status == 200, again.body
    order = again.json()["order"]
    assert (order["id"], order["status"]) == (order_id, "ORDER_STATUS_FAILED")
    assert order["failureReason"] == "PAYMENT_UNAVAILABLE", order


def test_an_unreachable_service_is_a_json_status_of_ours_for_rest_and_grpc(small_mesh):
    small_mesh.kill("order", 0)
    try:
        time.sleep(1.0)  # the edge's health checks notice
        response = rest(
            small_mesh, "GET", "/v1/orders?pageSize=1", headers=as_customer(small_mesh, "ada")
        )
        assert response.status == 503, response.body
        assert _status(response)["message"] in OURS
        order = contracts.service("order")
        with (
            grpc.insecure_channel(small_mesh.edge_address) as channel,
            pytest.raises(grpc.RpcError) as caught,
        ):
            order.stub(channel).ListOrders(
                order.messages.ListOrdersRequest(page_size=1),
                metadata=(("authorization", small_mesh.tokens.bearer("ada")),),
                timeout=5,
            )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert caught.value.details() in OURS
    finally:
        small_mesh.restart("order", 0)
