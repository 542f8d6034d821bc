"""Server spans: an incoming W3C traceparent continues into the server span and the error
trace id; the spans are the gRPC instrumentation's (name, kind, scope, attributes, status)."""

import asyncio
import contextlib

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler
from opentelemetry.trace import SpanKind, StatusCode

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


@contextlib.asynccontextmanager
async def _traced(databases, exporter, sampler=None):
    """A channel to the toy service, whose spans go to `exporter`."""
    provider = TracerProvider(**({"sampler": sampler} if sampler else {}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with (
        serving("catalog", databases, service=TOY, tracer_provider=provider) as server,
        connect(server) as channel,
    ):
        yield channel


@pytest.fixture
async def stub(databases, exporter):
    async with _traced(databases, exporter) as channel:
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


async def test_server_span_has_the_instrumentations_name_kind_scope_and_attributes(stub, exporter):
    await stub.GetProduct(catalog.messages.GetProductRequest(id="a"), metadata=TRACEPARENT)
    span = await _the_server_span(exporter)
    assert span.kind == SpanKind.SERVER
    assert span.instrumentation_scope.name == "opentelemetry.instrumentation.grpc"
    assert span.status.status_code == StatusCode.UNSET
    attributes = dict(span.attributes)
    assert attributes.pop("rpc.user_agent").startswith("grpc-python")
    assert attributes == {
        "rpc.system": "grpc",
        "rpc.service": "shop.catalog.v1.CatalogService",
        "rpc.method": "GetProduct",
        "rpc.grpc.status_code": 0,
        "net.peer.ip": "127.0.0.1",
        "net.peer.port": attributes["net.peer.port"],
        "net.peer.name": "localhost",
    }


@pytest.mark.parametrize(
    ("product_id", "code", "status"),
    [
        ("missing", grpc.StatusCode.NOT_FOUND, StatusCode.UNSET),  # the caller's error
        ("boom", grpc.StatusCode.INTERNAL, StatusCode.ERROR),  # the server's
    ],
)
async def test_a_failed_calls_span_has_its_code_and_errors_only_for_server_errors(
    stub, exporter, product_id, code, status
):
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GetProduct(catalog.messages.GetProductRequest(id=product_id))
    span = await _the_server_span(exporter)
    assert span.attributes["rpc.grpc.status_code"] == code.value[0]
    assert span.status.status_code == status
    assert span.parent is None  # no traceparent: a root span


async def test_an_unsampled_caller_gets_no_span_but_its_trace_goes_on(stub, exporter):
    unsampled = (("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-00"),)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetProduct(catalog.messages.GetProductRequest(id="boom"), metadata=unsampled)
    assert error_details(caught.value).metadata["trace_id"] == TRACE_ID
    await asyncio.sleep(0.2)
    assert exporter.get_finished_spans() == ()


async def test_health_checks_are_not_traced(databases, exporter):
    async with _traced(databases, exporter) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(3):
            await health.Check(
                health_pb2.HealthCheckRequest(service="shop.catalog.v1.CatalogService")
            )
        await catalog.stub(channel).GetProduct(catalog.messages.GetProductRequest(id="a"))
        span = await _the_server_span(exporter)
    assert span.name == "/shop.catalog.v1.CatalogService/GetProduct"


async def test_a_call_its_caller_cancels_is_not_a_server_error(stub, exporter):
    call = stub.GetProduct(catalog.messages.GetProductRequest(id="slow-3000"))
    await asyncio.sleep(0.3)  # the handler is running
    call.cancel()
    span = await _the_server_span(exporter)
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
    assert span.status.status_code == StatusCode.UNSET
    assert span.events == ()  # no exception recorded


class _Remembering(Sampler):
    """Samples everything, remembering the attributes each span was sampled with."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None,
                      links=None, trace_state=None):  # fmt: skip
        self.seen.append(dict(attributes or {}))
        return ALWAYS_ON.should_sample(parent_context, trace_id, name, kind, attributes, links)

    def get_description(self) -> str:
        return "remembering"


async def test_the_sampler_sees_the_methods_attributes(databases, exporter):
    sampler = _Remembering()
    async with _traced(databases, exporter, sampler) as channel:
        await catalog.stub(channel).GetProduct(catalog.messages.GetProductRequest(id="a"))
        await _the_server_span(exporter)
    assert sampler.seen[-1]["rpc.method"] == "GetProduct"
    assert sampler.seen[-1]["rpc.service"] == "shop.catalog.v1.CatalogService"
