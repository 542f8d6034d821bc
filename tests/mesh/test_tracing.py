"""Tracing: one trace across hops, with correct parent/child links."""

from opentelemetry.trace import SpanKind

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
