"""One checkout is one trace across order, catalog, inventory and payment."""

from opentelemetry.trace import SpanKind

import mesh
from mesh import config as mesh_config
from mesh import contracts
from services.runtime.testing import end_user_metadata
from tests.services.e2e.shop import DEFAULT_CUSTOMER, whole_shop
from tests.services.order.checkout import place_request

order = contracts.service("order")


async def test_place_order_spans_all_four_services_in_one_trace(databases, spans):
    async with whole_shop(databases) as shop:
        spans.clear()  # only the checkout's spans, not the shop's start-up
        upstream = {"order": mesh_config.Upstream("order", shop.address("order"))}
        config = mesh_config.MeshConfig(upstreams=upstream)
        async with mesh.aio_connect("order", config=config) as channel:
            placed = await order.stub(channel).PlaceOrder(
                place_request(), metadata=end_user_metadata(DEFAULT_CUSTOMER)
            )
    assert placed.order.status == order.messages.ORDER_STATUS_CONFIRMED

    finished = spans.get_finished_spans()
    assert len({s.context.trace_id for s in finished}) == 1
    by_id = {s.context.span_id: s for s in finished}
    servers = {s.name: s for s in finished if s.kind == SpanKind.SERVER}
    place = servers["/shop.order.v1.OrderService/PlaceOrder"]
    expected_downstream = {
        "/shop.catalog.v1.CatalogService/BatchGetProducts",
        "/shop.inventory.v1.InventoryService/ReserveStock",
        "/shop.payment.v1.PaymentService/Charge",
        "/shop.inventory.v1.InventoryService/CommitReservation",
    }
    assert expected_downstream <= set(servers)
    for name in expected_downstream:
        # server span <- order's client span for that call <- ... <- the PlaceOrder server span
        client = by_id[servers[name].parent.span_id]
        assert client.kind == SpanKind.CLIENT and client.name == name
        ancestor = client
        while ancestor.parent is not None and ancestor is not place:
            ancestor = by_id[ancestor.parent.span_id]
        assert ancestor is place, f"{name} is not inside the PlaceOrder server span"
    # ...and the PlaceOrder server span is the child of the caller's client span.
    caller = by_id[place.parent.span_id]
    assert caller.kind == SpanKind.CLIENT and caller.parent is None
