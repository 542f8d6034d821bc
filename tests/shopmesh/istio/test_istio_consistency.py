"""istio/ says what proto/ and shopmesh/topology.yaml say: objects, call graph, policy, probes."""

from __future__ import annotations

import dataclasses

import pytest

from mesh import contracts
from shopmesh.istio import traffic

from . import database_consistency, istio_consistency, progressive_delivery_consistency
from .istio_consistency import find

CHECKS = (
    istio_consistency.CHECKS + database_consistency.CHECKS + progressive_delivery_consistency.CHECKS
)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_every_overlay_is_consistent_with_the_contracts_and_topology(running, check) -> None:
    for overlay, documents in running.items():
        assert check(documents) == [], overlay


def test_the_gateway_routes_only_public_rpcs(rendered) -> None:
    (ingress,) = find(rendered["base"], "VirtualService", "ingress")
    paths = {route["match"][0]["uri"]["exact"] for route in ingress["spec"]["http"]}
    internal = {
        p.path for c in contracts.services().values() for p in c.methods.values() if p.internal
    }
    assert paths and not paths & internal
    assert "/shop.order.v1.OrderService/PlaceOrder" in paths


def test_mesh_retries_follow_the_contracts_retry_safety() -> None:
    place_order = contracts.method_policy("/shop.order.v1.OrderService/PlaceOrder")
    assert traffic.route(place_order, "PlaceOrder")["retries"]["attempts"] == 2
    # Not marked idempotent and no request_id to deduplicate on: never retried.
    get_order = contracts.method_policy("/shop.order.v1.OrderService/GetOrder")
    unsafe = dataclasses.replace(get_order, idempotency=contracts.Idempotency.UNKNOWN)
    assert traffic.route(unsafe, "GetOrder")["retries"] == {"attempts": 0}
    # Unmarked but with a REQUIRED request_id: every accepted call is deduplicated.
    deduplicated = dataclasses.replace(place_order, idempotency=contracts.Idempotency.UNKNOWN)
    assert traffic.retries(deduplicated)["attempts"] == 2
