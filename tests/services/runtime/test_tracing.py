"""An incoming W3C traceparent continues into the server span and the error trace id."""

import asyncio

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mesh import contracts
from services.runtime.testing import connect, error_details, serving

from .toy import TOY

catalog = contracts.service("catalog")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = (("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01"),)


async def _the_server_span(exporter: InMemorySpanExporter):
    """The one finished span. The server ends it after its answer is on the wire, so a
    client that has the answer may look before the span is exported: wait for it."""
    for _ in range(500):  # 5 s at most
        if exporter.get_finished_spans():
            break
        await asyncio.sleep(0.01)
    [span] = exporter.get_finished_spans()
    return span


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
async def stub(databases, exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with (
        serving("catalog", databases, service=TOY, tracer_provider=provider) as server,
        connect(server) as channel,
    ):
        yield catalog.stub(channel)


async def test_server_span_continues_the_callers_trace(stub, exporter):
    request = catalog.messages.GetProductRequest(id="a")
    await stub.GetProduct(request, metadata=TRACEPARENT)
    span = await _the_server_span(exporter)
    assert span.name == "/shop.catalog.v1.CatalogService/GetProduct"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(span.parent.span_id, "016x") == PARENT_ID


async def test_internal_error_reports_the_trace_id_of_the_call(stub, exporter):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetProduct(catalog.messages.GetProductRequest(id="boom"), metadata=TRACEPARENT)
    assert error_details(caught.value).metadata["trace_id"] == TRACE_ID
    span = await _the_server_span(exporter)
    assert not span.status.is_ok
