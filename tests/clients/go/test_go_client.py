"""The Go client (clients/go), from the stubs buf generates into gen/go, against
the running local mesh: gRPC with mTLS to the sidecars as the storefront-go
workload, for a shopper whose token it passes on.

`go vet` and `go test` run as a developer runs them in clients/go; the mesh's run
directory and the shopper's token reach the Go test through the environment.
Then Python checks what the Go client did, through the services themselves: the
order is the shopper's and CONFIRMED, and what it bought left the stock.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid

import pytest
from shop.order.v1 import order_pb2

from mesh import contracts
from tests.clients.commands import on_path
from tests.shopmesh.local.meshclient import as_workload, rest

GO_CLIENT = "clients/go"
GO_TESTS = {
    "TestDiscoverReadsTheRunDirectoryAndTheEnvironmentOverridesIt",
    "TestCallsGetTheContractsDeadlineUnlessTheCallerSetOne",
    "TestCheckoutThroughTheMesh",
}
# A cold build of gRPC and protobuf for Go takes minutes on two busy cores.
BUILD_SECONDS = 600
# go_tools: runs once make test has built the Go tools and this client (see the Makefile).
pytestmark = [pytest.mark.timeout(BUILD_SECONDS + 300), pytest.mark.go_tools]


@pytest.fixture(scope="module")
def go() -> str:
    return on_path("go", "Go")


def _go_env(**extra: str) -> dict[str, str]:
    # Only what the test sets: no SHOPMESH_* from the caller's shell redirects the client.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPMESH_")}
    # The machine's Go, and go.mod / go.sum as committed: a stale go.sum fails, unchanged.
    return {**env, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly", **extra}


@pytest.fixture(scope="module")
def built(go, repo_root) -> None:
    """`go vet ./...`: compiles the client, its command and its tests (before the mesh is busy)."""
    done = subprocess.run(
        [go, "vet", "./..."],
        cwd=repo_root / GO_CLIENT,
        env=_go_env(),
        capture_output=True,
        text=True,
        timeout=BUILD_SECONDS,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _go_test(go: str, repo_root, **env: str) -> tuple[dict[str, str], str]:
    """({test: pass|fail|skip}, everything the tests printed) of `go test -json ./...`."""
    done = subprocess.run(
        [go, "test", "-count=1", "-json", "./..."],
        cwd=repo_root / GO_CLIENT,
        env=_go_env(**env),
        capture_output=True,
        text=True,
        timeout=BUILD_SECONDS,
    )
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    output = "".join(e.get("Output", "") for e in events)
    assert done.returncode == 0, output + done.stderr
    results = {
        e["Test"]: e["Action"]
        for e in events
        if e.get("Test") and "/" not in e["Test"] and e["Action"] in ("pass", "fail", "skip")
    }
    return results, output


def test_go_client_shops_through_the_mesh(built, go, repo_root, mesh, stock) -> None:
    products = rest(mesh, "GET", "/v1/products?pageSize=100").json()["products"]
    skus = [p["sku"] for p in products]
    before = stock(skus)
    shopper = f"go-{uuid.uuid4().hex[:8]}"

    results, output = _go_test(
        go,
        repo_root,
        SHOPMESH_RUN_DIR=str(mesh.layout.root),
        SHOPMESH_TOKEN=mesh.tokens.token(shopper),
    )

    # Every test ran, the one against the mesh too (it skips without one).
    assert results == dict.fromkeys(GO_TESTS, "pass"), output
    # Default deadlines come from the contracts, as the Python and Node clients' do.
    deadlines = re.findall(r"contract deadline (\S+) (\d+)", output)
    assert len(deadlines) == 2, output
    for path, timeout_ms in deadlines:
        assert int(timeout_ms) == round(contracts.method_policy(path).timeout * 1000), path
    (order_id, sku, quantity) = re.findall(r"bought order=(\S+) sku=(\S+) quantity=(\d+)", output)[
        0
    ]

    # The order the Go client placed, as an operator reads it (mesh identity `ops`,
    # a token with the shop.ops scope): the shopper's, paid and committed.
    with as_workload(mesh, "ops", mesh.replica("order", 0)) as channel:
        reply = (
            contracts.service("order")
            .stub(channel)
            .GetOrder(
                order_pb2.GetOrderRequest(id=order_id),
                metadata=[("authorization", mesh.tokens.bearer("operator", ["shop.ops"]))],
                timeout=10,
            )
        )
    assert reply.order.customer_id == shopper
    assert reply.order.status == order_pb2.ORDER_STATUS_CONFIRMED
    assert [(line.sku, line.quantity) for line in reply.order.lines] == [(sku, int(quantity))]
    after = stock(skus)
    for each, (available, sold) in before.items():
        taken = int(quantity) if each == sku else 0
        assert after[each] == (available - taken, sold + taken), each
