"""Each real service answers the standard health check and lists itself by reflection."""

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from mesh import contracts
from services.runtime.testing import connect, serving


@pytest.mark.parametrize("name", ["catalog", "inventory", "payment"])
async def test_service_is_serving_and_reflected(tmp_path, name):
    full_name = contracts.service(name).full_name
    async with serving(name, tmp_path) as server, connect(server) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", full_name):
            response = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert response.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        listed = {s.name for s in (await call.read()).list_services_response.service}
        call.cancel()
    assert full_name in listed and "grpc.health.v1.Health" in listed
