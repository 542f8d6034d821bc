"""The TypeScript client (clients/node), generated from the same contracts, against
the running local mesh: gRPC with mTLS to the sidecars as the storefront-node
workload, REST/JSON through the edge.

The client prints a JSON report of its shopping trip; this test checks it, and
checks the stock it bought from Python, through the inventory service.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from mesh import contracts
from shopmesh import topology
from shopmesh.local.mesh import LocalMesh
from tests.clients.commands import on_path
from tests.shopmesh.local.meshclient import rest

NODE_CLIENT = "clients/node"
ENTRY = "dist/clients/node/src/main.js"
TRANSPORT_TESTS = "dist/clients/node/test/rest.test.js"
BAD_FIELDS = {"items[0].quantity", "shipping_address", "payment_method", "request_id"}


@pytest.fixture(scope="module")
def node() -> str:
    return on_path("node", "Node")


@pytest.fixture(scope="module")
def client(node, repo_root) -> list[str]:
    """The compiled client (tsc over clients/node/src and gen/ts), as a command."""
    package = repo_root / NODE_CLIENT
    tsc = package / "node_modules/typescript/bin/tsc"
    if not tsc.exists():
        pytest.fail(f"{tsc.parent.parent} is missing: `make test` installs it (npm ci)")
    built = subprocess.run(
        [node, str(tsc), "-p", str(package)], capture_output=True, text=True, timeout=120
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return [node, str(package / ENTRY)]


def test_rest_transport_sends_its_deadline_and_fails_as_rpc_errors(node, client, repo_root):
    """clients/node/test (node:test) against a scripted HTTP server: no mesh needed."""
    done = subprocess.run(
        [node, "--test", str(repo_root / NODE_CLIENT / TRANSPORT_TESTS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# pass 5" in done.stdout and "# fail 0" in done.stdout, done.stdout


def run_client(mesh: LocalMesh, command: list[str], token: str) -> dict:
    # Only what the mesh wrote: no SHOPMESH_* from the caller's shell redirects the client.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPMESH_")}
    done = subprocess.run(
        [*command, "--run-dir", str(mesh.layout.root), "--token", token],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_node_client_shops_through_the_mesh(client, mesh, stock):
    products = rest(mesh, "GET", "/v1/products?pageSize=100").json()["products"]
    skus = [p["sku"] for p in products]
    before = stock(skus)

    shopper = f"node-{uuid.uuid4().hex[:8]}"
    report = run_client(mesh, client, mesh.tokens.token(shopper))

    assert report["workload"] == topology.load().spiffe_id("storefront-node")
    # Default deadlines come from the contracts, as the Python clients' do.
    for path, timeout_ms in report["deadlines_ms"].items():
        assert timeout_ms == round(contracts.method_policy(path).timeout * 1000), path
    bought: dict[str, int] = {}
    for transport in ("grpc", "rest"):
        trip = report[transport]
        assert len(trip["products"]) == 5, transport
        assert trip["products"] == sorted(trip["products"]), transport  # ordered by id
        order = trip["order"]
        assert order["status"] == "ORDER_STATUS_CONFIRMED", (transport, order)
        # The token's subject is the customer, and lists only their own orders.
        assert {o["customer_id"] for o in trip["listed"]} == {shopper}, (transport, trip)
        assert order["id"] in [o["id"] for o in trip["listed"]], transport
        for line in order["lines"]:
            bought[line["sku"]] = bought.get(line["sku"], 0) + line["quantity"]
        bad = trip["bad_request"]
        assert bad["code"] == "INVALID_ARGUMENT", (transport, bad)
        assert bad.get("reason") == "INVALID_REQUEST", (transport, bad)
        assert bad.get("domain") == "shop.order.v1", (transport, bad)
        assert set(bad["field_violations"]) == BAD_FIELDS, (transport, bad)
        assert bad["field_violations"]["request_id"] == "must be a UUID", transport
        assert trip["deadline"]["code"] == "DEADLINE_EXCEEDED", (transport, trip["deadline"])
    # Without the shopper's token no order: the edge says who is missing (401); the
    # order sidecar lets no allowed workload through without an end user (403).
    assert report["rest"]["no_token"]["code"] == "UNAUTHENTICATED", report["rest"]
    assert report["grpc"]["no_token"]["code"] == "PERMISSION_DENIED", report["grpc"]
    assert bought == {
        report["grpc"]["order"]["lines"][0]["sku"]: 2,
        report["rest"]["order"]["lines"][0]["sku"]: 1,
    }
    # The sidecar's RBAC knows the client by its certificate: no inventory for it.
    assert report["not_allowed"]["code"] == "PERMISSION_DENIED"
    # And the client knows the sidecars by theirs: catalog's certificate is not order's.
    assert report["wrong_peer"]["code"] == "UNAVAILABLE"
    assert f"expected {topology.load().spiffe_id('order')}" in report["wrong_peer"]["message"]

    after = stock(skus)
    for sku, (available, sold) in before.items():
        taken = bought.get(sku, 0)
        assert after[sku] == (available - taken, sold + taken), sku
