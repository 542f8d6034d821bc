"""grpcurl and grpc-health-probe against each service, with the commands README shows.

Plain loopback servers, as `make up` prints each replica's app address: list
and describe through server reflection (grpcio-reflection serves v1alpha only;
grpcurl asks for v1 first and falls back), one call, and the health probe on
the overall status, the service's name and `liveness`.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from mesh import contracts
from services.runtime.health import LIVENESS
from services.runtime.testing import serving
from tests.grpc_tools import grpc_health_probe, grpcurl

# Runs once make test has built .tools/bin (see the Makefile's test target).
pytestmark = pytest.mark.go_tools

# Order's upstreams point at a closed loopback port: it serves without calling them.
_ENV = {
    "order": {
        f"SHOPMESH_UPSTREAM_{name}": "127.0.0.1:1" for name in ("CATALOG", "INVENTORY", "PAYMENT")
    },
}
# (service, a read RPC, its request, what grpcurl prints: the JSON answer, or the error's code)
CALLS = [
    ("catalog", "GetProduct", {"id": "kitchen-espresso-cup"}, {"product": {"sku": "KIT-1001"}}),
    ("inventory", "GetStock", {"sku": "KIT-1001"}, {"stock": {"sku": "KIT-1001"}}),
    ("payment", "GetPayment", {"id": "no-such-payment"}, "Code: NotFound"),
    # The app takes the end user from its sidecar, which verified the token: none here.
    ("order", "GetOrder", {"id": "no-such-order"}, "Code: Unauthenticated"),
]


def _contains(answer: dict, expected: dict) -> bool:
    return all(
        _contains(answer.get(key, {}), value)
        if isinstance(value, dict)
        else answer.get(key) == value
        for key, value in expected.items()
    )


@pytest.mark.parametrize(
    ("name", "method", "request_", "expected"), CALLS, ids=[c[0] for c in CALLS]
)
async def test_grpcurl_lists_describes_and_calls_each_service(
    databases, name, method, request_, expected
) -> None:
    contract = contracts.service(name)
    async with serving(name, databases, _ENV.get(name)) as server:
        address = f"127.0.0.1:{server.port}"
        listed = await grpcurl("-plaintext", address, "list")
        assert listed.returncode == 0, listed.stderr
        services = set(listed.stdout.split())
        assert {contract.full_name, "grpc.health.v1.Health"} <= services
        # Only the v1alpha reflection service exists: grpcurl fell back to it.
        assert "grpc.reflection.v1alpha.ServerReflection" in services
        assert "grpc.reflection.v1.ServerReflection" not in services

        described = await grpcurl("-plaintext", address, "describe", contract.full_name)
        assert described.returncode == 0, described.stderr
        for rpc in contract.methods:
            assert f"rpc {rpc} (" in described.stdout, rpc

        path = f"{contract.full_name}/{method}"
        called = await grpcurl("-plaintext", "-d", json.dumps(request_), address, path)
    if isinstance(expected, dict):
        assert _contains(called.json(), expected), called.stdout
    else:
        assert called.returncode != 0 and expected in called.stderr, called.stderr


@pytest.mark.parametrize("name", list(contracts.services()))
async def test_grpc_health_probe_sees_each_service_serving(databases, name) -> None:
    full_name = contracts.service(name).full_name
    async with serving(name, databases, _ENV.get(name)) as server:
        address = f"127.0.0.1:{server.port}"
        for service in ("", full_name, LIVENESS):
            probed = await grpc_health_probe("-addr", address, "-service", service)
            assert probed.returncode == 0, (service, probed.stderr)
            assert "status: SERVING" in probed.output, service
        unknown = await grpc_health_probe("-addr", address, "-service", "shop.nothing.v1.Nothing")
    # Exit 3: the health RPC failed (NOT_FOUND: no such name), as grpc_health_probe documents.
    assert unknown.returncode == 3 and "NotFound" in unknown.stderr, unknown.stderr


async def test_grpc_health_probe_fails_while_the_store_is_down_but_liveness_holds(
    databases, outage
) -> None:
    full_name = contracts.service("catalog").full_name
    async with serving("catalog", databases) as server:
        address = f"127.0.0.1:{server.port}"
        outage.begin("catalog")
        await asyncio.sleep(0.3)  # older than the on-demand max age: the check probes again
        down = await grpc_health_probe("-addr", address, "-service", full_name)
        alive = await grpc_health_probe("-addr", address, "-service", LIVENESS)
    # Exit 4: the service answered, NOT_SERVING.
    assert down.returncode == 4 and "NOT_SERVING" in down.stderr, down.stderr
    assert alive.returncode == 0, alive.stderr
