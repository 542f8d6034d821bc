"""Each real service answers the standard health check and lists itself by reflection."""

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from mesh import contracts
from services.runtime.testing import connect, serving

# Order's upstreams point at a closed loopback port (not the default cluster DNS names):
# it must be SERVING without calling any of them.
_ENV = {
    "order": {
        f"SHOPMESH_UPSTREAM_{name}": "127.0.0.1:1" for name in ("CATALOG", "INVENTORY", "PAYMENT")
    },
}


@pytest.mark.parametrize(
    ("name", "full_name"),
    [
        ("catalog", "shop.catalog.v1.CatalogService"),
        ("inventory", "shop.inventory.v1.InventoryService"),
        ("payment", "shop.payment.v1.PaymentService"),
        ("order", "shop.order.v1.OrderService"),
    ],
)
async def test_service_is_serving_and_reflected(databases, name, full_name):
    assert contracts.service(name).full_name == full_name
    async with serving(name, databases, _ENV.get(name)) as server, connect(server) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", full_name):
            response = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert response.status == health_pb2.HealthCheckResponse.SERVING, service
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        listed = {s.name for s in (await call.read()).list_services_response.service}
        call.cancel()
    assert full_name in listed and "grpc.health.v1.Health" in listed
