"""grpcurl and grpc-health-probe against the running mesh, with the commands README shows.

An operator reaches a service behind its sidecar with mutual TLS as the `ops`
workload: the mesh CA, ops's certificate and key, and the service's name for
the sidecar's certificate. The sidecar's RBAC lets ops call only what
shopmesh/topology.yaml allows it, and health, which every identity may call;
server reflection is not among them, so grpcurl reads the contracts from the
committed descriptor set instead. Frontends call the edge, plaintext h2c.
"""

from __future__ import annotations

import json

import pytest

from mesh import contracts
from shopmesh.local.mesh import LocalMesh
from tests.grpc_tools import grpc_health_probe, grpcurl

# Runs once make test has built .tools/bin (see the Makefile's test target).
pytestmark = pytest.mark.go_tools

DESCRIPTOR_SET = "gen/descriptor/shop.binpb"


def _ops_tls(mesh: LocalMesh, service: str) -> list[str]:
    """grpcurl's flags for calling `service`'s sidecar as ops."""
    ops = mesh.certs["ops"]
    certs = ["-cacert", str(mesh.layout.ca), "-cert", str(ops.cert), "-key", str(ops.key)]
    return [*certs, "-servername", f"{service}.shop.svc"]


def _probe_tls(mesh: LocalMesh, service: str) -> list[str]:
    """grpc-health-probe's flags for the same."""
    ops = mesh.certs["ops"]
    return [
        "-tls",
        "-tls-ca-cert", str(mesh.layout.ca),
        "-tls-client-cert", str(ops.cert),
        "-tls-client-key", str(ops.key),
        "-tls-server-name", f"{service}.shop.svc",
    ]  # fmt: skip


async def test_operator_calls_what_the_topology_allows_through_the_sidecar(mesh, repo_root) -> None:
    inventory = mesh.replica("inventory", 0).inbound_address
    protoset = ["-protoset", str(repo_root / DESCRIPTOR_SET)]
    stock = await grpcurl(
        *_ops_tls(mesh, "inventory"),
        *protoset,
        "-d", json.dumps({"sku": "KIT-1001"}),
        inventory, "shop.inventory.v1.InventoryService/GetStock",
    )  # fmt: skip
    assert stock.json()["stock"]["sku"] == "KIT-1001"
    # Reflection is no RPC the topology grants: the sidecar's RBAC refuses it.
    listed = await grpcurl(*_ops_tls(mesh, "inventory"), inventory, "list")
    assert listed.returncode != 0 and "PermissionDenied" in listed.stderr, listed.output
    # Nor may ops call catalog at all.
    catalog = mesh.replica("catalog", 0).inbound_address
    product = await grpcurl(
        *_ops_tls(mesh, "catalog"),
        *protoset,
        "-d", json.dumps({"id": "kitchen-espresso-cup"}),
        catalog, "shop.catalog.v1.CatalogService/GetProduct",
    )  # fmt: skip
    assert product.returncode != 0 and "PermissionDenied" in product.stderr, product.output


async def test_operator_reads_orders_with_an_operators_token(mesh, repo_root) -> None:
    order = mesh.replica("order", 0).inbound_address
    call = [
        *_ops_tls(mesh, "order"),
        "-protoset", str(repo_root / DESCRIPTOR_SET),
        "-d", json.dumps({"id": "00000000-0000-4000-8000-000000000000"}),
    ]  # fmt: skip
    path = "shop.order.v1.OrderService/GetOrder"
    operator = mesh.tokens.bearer("operator-ada", ["shop.ops"])
    with_token = await grpcurl(*call, "-H", f"authorization: {operator}", order, path)
    assert with_token.returncode != 0 and "Code: NotFound" in with_token.stderr, with_token.output
    # Order RPCs act for an end user: without a token the sidecar refuses the workload.
    without = await grpcurl(*call, order, path)
    assert without.returncode != 0 and "PermissionDenied" in without.stderr, without.output


@pytest.mark.parametrize("service", list(contracts.services()))
async def test_health_probe_through_each_sidecar(mesh, service) -> None:
    sidecar = mesh.replica(service, 0).inbound_address
    full_name = contracts.service(service).full_name
    probed = await grpc_health_probe(
        "-addr", sidecar, *_probe_tls(mesh, service), "-service", full_name
    )
    assert probed.returncode == 0 and "status: SERVING" in probed.output, probed.output
    # Without a client certificate the sidecar does not finish the handshake: exit 2,
    # the probe could not connect (the same probe with one just did).
    anonymous = await grpc_health_probe(
        "-addr", sidecar, "-tls", "-tls-ca-cert", str(mesh.layout.ca),
        "-tls-server-name", f"{service}.shop.svc",
    )  # fmt: skip
    assert anonymous.returncode == 2, anonymous.output


async def test_frontends_call_the_edge_with_the_descriptor_set(mesh, repo_root) -> None:
    listed = await grpcurl(
        "-plaintext",
        "-protoset", str(repo_root / DESCRIPTOR_SET),
        "-d", json.dumps({"pageSize": 2}),
        mesh.edge_address, "shop.catalog.v1.CatalogService/ListProducts",
    )  # fmt: skip
    assert len(listed.json()["products"]) == 2
