"""Tracing: one trace across hops, with correct parent/child links."""

import grpc
import pytest
from opentelemetry import baggage, context, propagate, trace
from opentelemetry.trace import SpanKind, StatusCode

import mesh
from services.runtime.interceptors import InboundDeadline, tracing_interceptor

from .scripted_server import Script, catalog, config_for


async def test_two_hops_share_one_trace_with_parent_links(scripted, upstream_name, spans):
    back = Script()
    back_address = await scripted(back, interceptors=(tracing_interceptor(),))
    onward = mesh.aio_connect(upstream_name, config=config_for(back_address, upstream_name))
    front = Script(forward=lambda request: catalog.stub(onward).GetProduct(request))
    front_address = await scripted(front, interceptors=(tracing_interceptor(), InboundDeadline()))

    async with mesh.aio_connect("catalog", config=config_for(front_address, "catalog")) as ch:
        await catalog.stub(ch).GetProduct(catalog.messages.GetProductRequest(id="p-1"))
    await onward.close()

    finished = spans.get_finished_spans()
    clients = [s for s in finished if s.kind == SpanKind.CLIENT]
    servers = [s for s in finished if s.kind == SpanKind.SERVER]
    assert len(clients) == 2 and len(servers) == 2
    assert len({s.context.trace_id for s in finished}) == 1
    by_id = {s.context.span_id: s for s in finished}
    # caller client span -> front server span -> front's client span -> back server span
    chain = [s for s in servers if by_id[s.parent.span_id].parent is None]
    assert len(chain) == 1
    front_server = chain[0]
    front_client = next(
        s for s in clients if s.parent and s.parent.span_id == front_server.context.span_id
    )
    back_server = next(s for s in servers if s.parent.span_id == front_client.context.span_id)
    assert back_server is not front_server
    assert "traceparent" in back.metadata[0] and "traceparent" in front.metadata[0]


async def test_a_call_span_is_the_instrumentations_span(scripted, upstream_name, spans):
    """Name, kind, attributes and the header, as opentelemetry-instrumentation-grpc makes them."""
    script = Script()
    address = await scripted(script)
    async with mesh.aio_connect(upstream_name, config=config_for(address, upstream_name)) as ch:
        await catalog.stub(ch).GetProduct(catalog.messages.GetProductRequest(id="p-1"))

    (span,) = spans.get_finished_spans()
    assert span.name == "/shop.catalog.v1.CatalogService/GetProduct"
    assert span.kind == SpanKind.CLIENT
    assert span.instrumentation_scope.name == "opentelemetry.instrumentation.grpc"
    assert dict(span.attributes) == {
        "rpc.system": "grpc",
        "rpc.service": "shop.catalog.v1.CatalogService",
        "rpc.method": "GetProduct",
        "rpc.grpc.status_code": 0,
    }
    assert span.status.status_code == StatusCode.UNSET
    assert span.context.trace_flags.sampled
    # The header OpenTelemetry's own propagators write for that span.
    expected: dict[str, str] = {}
    propagate.inject(expected, trace.set_span_in_context(trace.NonRecordingSpan(span.context)))
    assert script.metadata[0]["traceparent"] == expected["traceparent"]


async def test_a_failed_call_span_says_how_it_failed(scripted, upstream_name, spans):
    address = await scripted(Script(always=grpc.StatusCode.NOT_FOUND))
    async with mesh.aio_connect(upstream_name, config=config_for(address, upstream_name)) as ch:
        with pytest.raises(grpc.aio.AioRpcError):
            await catalog.stub(ch).GetProduct(catalog.messages.GetProductRequest(id="p-1"))

    (span,) = spans.get_finished_spans()
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description.startswith("AioRpcError: ")
    assert [event.name for event in span.events] == ["exception"]


async def test_a_call_for_an_unsampled_request_has_no_span_and_carries_its_trace(
    scripted, upstream_name, spans
):
    """A span that could never be recorded is not made: the server continues the request's
    trace, unsampled, from the request's own span."""
    script = Script()
    address = await scripted(script)
    request_span = trace.NonRecordingSpan(
        trace.SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=trace.TraceFlags(0))
    )
    async with mesh.aio_connect(upstream_name, config=config_for(address, upstream_name)) as ch:
        with trace.use_span(request_span):
            await catalog.stub(ch).GetProduct(catalog.messages.GetProductRequest(id="p-1"))

    assert spans.get_finished_spans() == ()
    assert script.metadata[0]["traceparent"] == f"00-{0xABC:032x}-{0xDEF:016x}-00"


async def test_baggage_and_the_callers_own_metadata_travel_with_the_trace(
    scripted, upstream_name, spans
):
    script = Script()
    address = await scripted(script)
    async with mesh.aio_connect(upstream_name, config=config_for(address, upstream_name)) as ch:
        token = context.attach(baggage.set_baggage("shopper", "ada"))
        try:
            await catalog.stub(ch).GetProduct(
                catalog.messages.GetProductRequest(id="p-1"), metadata=(("x-caller", "test"),)
            )
        finally:
            context.detach(token)

    seen = script.metadata[0]
    assert seen["baggage"] == "shopper=ada"
    assert seen["x-caller"] == "test"
    (span,) = spans.get_finished_spans()
    assert seen["traceparent"].split("-")[2] == f"{span.context.span_id:016x}"
