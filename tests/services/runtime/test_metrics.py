"""/metrics shows per-method counts by code and latency buckets after calls."""

import asyncio
import contextlib
import urllib.request

import grpc
from prometheus_client.parser import text_string_to_metric_families

from mesh import contracts
from services.runtime.testing import connect, serving

from .toy import TOY

catalog = contracts.service("catalog")
LABELS = {"grpc_service": "shop.catalog.v1.CatalogService", "grpc_method": "GetProduct"}


def _samples(port: int) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples, name: str, **labels) -> float:
    return samples.get((name, frozenset({**LABELS, **labels}.items())), 0.0)


async def test_metrics_endpoint_counts_calls_by_code_and_times_them(databases):
    async with serving("catalog", databases, service=TOY, metrics_listen="127.0.0.1:0") as server:
        port = server.metrics_port
        before = await asyncio.to_thread(_samples, port)
        async with connect(server) as channel:
            stub = catalog.stub(channel)
            for product_id in ("a", "b", "missing", ""):
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await stub.GetProduct(catalog.messages.GetProductRequest(id=product_id))
        after = await asyncio.to_thread(_samples, port)

    def delta(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("grpc_server_handled_total", grpc_code="OK") == 2
    assert delta("grpc_server_handled_total", grpc_code="NOT_FOUND") == 1
    assert delta("grpc_server_handled_total", grpc_code="INVALID_ARGUMENT") == 1
    assert delta("grpc_server_handling_seconds_count") == 4
    assert delta("grpc_server_handling_seconds_bucket", le="+Inf") == 4
    assert delta("grpc_server_handling_seconds_bucket", le="10.0") == 4
    assert _value(after, "grpc_server_in_flight") == 0


async def test_empty_metrics_listen_turns_the_endpoint_off(databases):
    async with serving("catalog", databases, service=TOY, metrics_listen="") as server:
        assert server.metrics_port is None
