"""Proxies balance each request, not each connection, over a service's replicas."""

import http.client
import uuid

import grpc
import pytest

from mesh import contracts

from .conftest import CHECKOUT_BURST
from .meshclient import as_customer, order_body, rest

pytestmark = pytest.mark.timeout(180)


def _requests_by_replica(mesh, proxy, service: str) -> dict[str, int]:
    names = {r.inbound_address: r.name for r in mesh.replicas[service]}
    return {
        names[h.address]: h.requests for h in mesh.upstream_hosts(proxy) if h.cluster == service
    }


def _growth(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before.get(name, 0) for name in after}


def _inbound_requests(replica) -> int:
    stats = replica.sidecar.admin.stats("http.inbound.downstream_rq_total")
    return stats["http.inbound.downstream_rq_total"]


def test_rest_requests_on_one_connection_spread_over_both_replicas(mesh):
    before = _requests_by_replica(mesh, mesh.edge, "catalog")
    served_before = [_inbound_requests(r) for r in mesh.replicas["catalog"]]
    connection = http.client.HTTPConnection("127.0.0.1", mesh.edge_port, timeout=10)
    try:
        for _ in range(40):
            response = rest(mesh, "GET", "/v1/categories", connection=connection)
            assert response.status == 200
    finally:
        connection.close()
    growth = _growth(before, _requests_by_replica(mesh, mesh.edge, "catalog"))
    assert sorted(growth) == ["catalog-0", "catalog-1"]
    assert sum(growth.values()) == 40
    assert min(growth.values()) >= 8, growth
    # The replicas' own sidecars saw the requests arrive.
    served = [
        _inbound_requests(r) - n
        for r, n in zip(mesh.replicas["catalog"], served_before, strict=True)
    ]
    assert min(served) >= 8, served


def test_grpc_calls_on_one_channel_spread_over_both_replicas(mesh):
    catalog = contracts.service("catalog")
    before = _requests_by_replica(mesh, mesh.edge, "catalog")
    with grpc.insecure_channel(mesh.edge_address) as channel:
        stub = catalog.stub(channel)
        for _ in range(40):
            stub.ListCategories(catalog.messages.ListCategoriesRequest(), timeout=5)
    growth = _growth(before, _requests_by_replica(mesh, mesh.edge, "catalog"))
    assert min(growth.values()) >= 8, growth


def test_the_order_replicas_spread_their_calls_over_inventory_and_payment(mesh):
    orders = mesh.replicas["order"]
    before = {
        s: [_requests_by_replica(mesh, o.sidecar, s) for o in orders]
        for s in ("inventory", "payment")
    }
    # Each checkout makes one Charge; the balancer picks at random among idle replicas,
    # so enough checkouts that "all on one replica" is vanishingly unlikely (2 * 2**-20).
    # One customer each: the edge limits checkouts per customer.
    for _ in range(2 * CHECKOUT_BURST):
        customer = f"lb-{uuid.uuid4().hex[:8]}"
        placed = rest(mesh, "POST", "/v1/orders", order_body(customer), as_customer(mesh, customer))
        assert placed.status == 200, placed.body
    for service in ("inventory", "payment"):
        total: dict[str, int] = {}
        for order_replica, counts in zip(orders, before[service], strict=True):
            after = _requests_by_replica(mesh, order_replica.sidecar, service)
            for name, grown in _growth(counts, after).items():
                total[name] = total.get(name, 0) + grown
        assert len(total) == 2 and min(total.values()) >= 1, (service, total)
