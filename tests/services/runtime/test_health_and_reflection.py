"""Health reports the store's real state (Check and Watch); reflection lists the services.

The LIVENESS name is the exception: SERVING while the process answers, whatever
the store does and through draining (the Kubernetes liveness probe asks for it).
"""

import asyncio
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.runtime.health import LIVENESS, HealthReporter
from services.runtime.testing import connect, serving

from ..outage import RECOVERY_SECONDS, serving_again
from .toy import TOY

SERVICE = "shop.catalog.v1.CatalogService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
async def server(databases):
    async with serving("catalog", databases, service=TOY) as server:
        yield server


async def _status(health, service: str = "") -> int:
    return (await health.Check(health_pb2.HealthCheckRequest(service=service))).status


async def test_serving_overall_and_per_service_and_not_found_for_others(server):
    async with connect(server) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert await _status(health) == SERVING
        assert await _status(health, SERVICE) == SERVING
        assert await _status(health, LIVENESS) == SERVING
        with pytest.raises(Exception, match="NOT_FOUND"):
            await _status(health, "shop.nothing.v1.Nothing")


async def test_unusable_store_turns_not_serving_at_once_and_back(server, outage):
    async with connect(server) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        outage.begin("catalog")
        await asyncio.sleep(0.3)  # older than the on-demand max age: Check probes again
        assert await _status(health, SERVICE) == NOT_SERVING
        assert await _status(health) == NOT_SERVING
        outage.end()
        await serving_again(channel, SERVICE)
        assert await _status(health) == SERVING


async def test_liveness_stays_serving_while_the_store_is_faulted(server, outage):
    # A store outage must not make the kubelet restart every pod of the service.
    async with connect(server) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=LIVENESS))
        assert (await asyncio.wait_for(watch.read(), 5)).status == SERVING
        outage.begin("catalog")
        await asyncio.sleep(0.3)
        assert await _status(health, SERVICE) == NOT_SERVING
        assert await _status(health) == NOT_SERVING
        assert await _status(health, LIVENESS) == SERVING
        await asyncio.sleep(1.2)  # the periodic probe has seen the fault too
        assert await _status(health, LIVENESS) == SERVING
        outage.end()
        await serving_again(channel, SERVICE)
        with pytest.raises(asyncio.TimeoutError):  # no NOT_SERVING was ever streamed
            await asyncio.wait_for(watch.read(), 0.5)
        watch.cancel()


async def test_liveness_answers_at_once_while_the_store_probe_hangs():
    # A readiness Check waits for the on-demand probe (up to its timeout); a
    # liveness Check must not, or a hanging disk would fail the kubelet's 1 s probe.
    async def hanging_probe() -> None:
        await asyncio.sleep(3600)

    reporter = HealthReporter([SERVICE], hanging_probe, interval=3600, probe_timeout=2.0)
    grpc_server = grpc.aio.server()
    reporter.add_to_server(grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    try:
        await reporter.start()  # the first probe times out: NOT_SERVING
        async with connect(port) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            await asyncio.sleep(0.3)  # older than max_age: the next readiness Check probes
            readiness = asyncio.create_task(_status(health, SERVICE))
            await asyncio.sleep(0.05)
            started = time.monotonic()
            assert await _status(health, LIVENESS) == SERVING
            assert time.monotonic() - started < 1.5  # the hanging probe takes 2 s
            assert not readiness.done()  # still waiting on the hanging probe
            assert await readiness == NOT_SERVING
    finally:
        await reporter.stop()
        await grpc_server.stop(0)


async def test_watch_streams_changes_from_the_periodic_probe(server, outage):
    async with connect(server) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=SERVICE)
        )
        seen = [(await asyncio.wait_for(watch.read(), 5)).status]
        outage.begin("catalog")  # nobody calls Check: the periodic probe must notice
        seen.append((await asyncio.wait_for(watch.read(), 5)).status)
        outage.end()
        seen.append((await asyncio.wait_for(watch.read(), RECOVERY_SECONDS)).status)
        watch.cancel()
    assert seen == [SERVING, NOT_SERVING, SERVING]


async def test_drain_sets_not_serving_for_good(server):
    async with connect(server) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        assert (await asyncio.wait_for(watch.read(), 5)).status == SERVING
        await server.health.drain()
        assert (await asyncio.wait_for(watch.read(), 5)).status == NOT_SERVING
        await server.health.refresh()  # a healthy probe must not undo draining
        health = health_pb2_grpc.HealthStub(channel)
        assert await _status(health) == NOT_SERVING
        assert await _status(health, SERVICE) == NOT_SERVING
        # Draining is not death: liveness must not kill the pod mid-drain.
        assert await _status(health, LIVENESS) == SERVING
        watch.cancel()


async def test_reflection_lists_the_service_health_and_reflection(server):
    async with connect(server) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        response = await responses.read()
        names = {s.name for s in response.list_services_response.service}
        responses.cancel()
    assert names == {
        SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
