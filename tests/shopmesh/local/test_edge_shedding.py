"""Load shedding at the edge: what is over the measured limit is refused at once, politely
(429 with retry advice).

A mesh of its own whose edge believes a catalog call should take a millisecond
(EdgeSettings.browsing_ideal_seconds, at the least Envoy takes): every real call
through the mesh is "too slow", so the browsing limiter (Envoy's adaptive
concurrency) keeps its floor of a few calls in flight and refuses the rest of a
burst, as it would on a saturated machine. Orders have a limiter of their own.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import grpc
import pytest

from mesh import contracts
from shopmesh.bench import edge_load
from shopmesh.envoy import edge
from shopmesh.envoy.edge import EdgeSettings
from shopmesh.local.mesh import LocalMesh

pytestmark = pytest.mark.timeout(180)

catalog = contracts.service("catalog")
BURST = 120
PRODUCT = "kitchen-espresso-cup"


@pytest.fixture(scope="module")
def impatient_mesh(tmp_path_factory):
    settings = EdgeSettings(port=0, browsing_ideal_seconds=0.001)
    with LocalMesh(
        tmp_path_factory.mktemp("shedding"), replicas={"catalog": 1}, edge_settings=settings,
        drain_seconds=1,
    ) as running:  # fmt: skip
        yield running


async def _burst(url: str) -> list[tuple[int, dict, str]]:
    async with aiohttp.ClientSession() as session:

        async def one():
            async with session.get(f"{url}/v1/products/{PRODUCT}") as response:
                headers = {k.lower(): v for k, v in response.headers.items()}
                return response.status, headers, await response.text()

        return await asyncio.gather(*(one() for _ in range(BURST)))


def test_a_burst_over_the_limit_is_shed_with_retry_advice(impatient_mesh):
    answers = asyncio.run(_burst(impatient_mesh.edge_url))
    statuses = [status for status, _, _ in answers]
    assert 200 in statuses and 429 in statuses, statuses
    assert set(statuses) == {200, 429}
    for status, headers, body in answers:
        if status != 429:
            continue
        assert headers.get("retry-after") == str(edge.SHED_RETRY_SECONDS), (headers, body)
        assert headers["content-type"].startswith("application/json")
        assert json.loads(body) == {
            "code": grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
            "message": edge.SHED_MESSAGE,
            "details": [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.000s"}
            ],
        }


async def _grpc_burst(address: str) -> list[grpc.StatusCode]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = catalog.stub(channel)

        async def one():
            try:
                await stub.GetProduct(catalog.messages.GetProductRequest(id=PRODUCT), timeout=10)
                return grpc.StatusCode.OK, ""
            except grpc.aio.AioRpcError as error:
                return error.code(), error.details()

        return await asyncio.gather(*(one() for _ in range(BURST)))


def test_grpc_clients_are_told_resource_exhausted_with_the_same_words(impatient_mesh):
    answers = asyncio.run(_grpc_burst(impatient_mesh.edge_address))
    codes = {code for code, _ in answers}
    assert codes == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, answers
    assert {details for code, details in answers if code != grpc.StatusCode.OK} == {
        edge.SHED_MESSAGE
    }


def test_orders_have_their_own_limiter(impatient_mesh):
    """Orders are not shed for browsing's latency: no order replica runs here, so every
    order call fails at the router (no healthy upstream), none at a limiter."""
    answers = asyncio.run(_burst_orders(impatient_mesh))
    assert {status for status, _ in answers} == {503}  # no healthy upstream: no 429
    assert not [body for _, body in answers if edge.SHED_MESSAGE in body]


async def _burst_orders(mesh: LocalMesh) -> list[tuple[int, str]]:
    headers = {"authorization": mesh.tokens.bearer("ada")}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one():
            async with session.get(f"{mesh.edge_url}/v1/orders") as response:
                return response.status, await response.text()

        return await asyncio.gather(*(one() for _ in range(BURST)))


def test_an_operator_switches_shedding_off_at_runtime(impatient_mesh):
    """As the benchmarks of the shop behind the edge do (edge_load.shed)."""
    edge_load.shed(impatient_mesh, on=False)
    try:
        answers = asyncio.run(_burst(impatient_mesh.edge_url))
    finally:
        edge_load.shed(impatient_mesh, on=True)
    assert {status for status, _, _ in answers} == {200}
