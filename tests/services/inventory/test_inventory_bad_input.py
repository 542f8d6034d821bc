"""Every validation rule of inventory: INVALID_ARGUMENT naming the fields, store unchanged."""

import grpc
import pytest
from google.protobuf import duration_pb2

from mesh import contracts
from services.runtime.testing import connect, error_details, serving

from ..rows import snapshot

inventory = contracts.service("inventory")
m = inventory.messages


def item(sku="KIT-1002", quantity=1):
    return m.ReservationItem(sku=sku, quantity=quantity)


def reserve(**fields):
    values = {"order_id": "o-1", "items": [item()], "request_id": "r-1", **fields}
    return m.ReserveStockRequest(**values)


CASES = [
    ("GetStock", m.GetStockRequest(), {"sku"}),
    ("GetStock", m.GetStockRequest(sku="S" * 129), {"sku"}),
    ("BatchGetStock", m.BatchGetStockRequest(), {"skus"}),
    ("BatchGetStock", m.BatchGetStockRequest(skus=["A"] * 101), {"skus"}),
    ("BatchGetStock", m.BatchGetStockRequest(skus=["A", ""]), {"skus[1]"}),
    ("ReserveStock", reserve(order_id=""), {"order_id"}),
    ("ReserveStock", reserve(request_id=""), {"request_id"}),
    ("ReserveStock", reserve(items=[]), {"items"}),
    ("ReserveStock", reserve(items=[item()] * 101), {"items"}),
    ("ReserveStock", reserve(items=[item(quantity=0)]), {"items[0].quantity"}),
    ("ReserveStock", reserve(items=[item(quantity=-3)]), {"items[0].quantity"}),
    ("ReserveStock", reserve(items=[item(quantity=1001)]), {"items[0].quantity"}),
    ("ReserveStock", reserve(items=[item(sku="")]), {"items[0].sku"}),
    ("ReserveStock", reserve(items=[item(), item("OUT-3001"), item()]), {"items[2]"}),
    ("ReserveStock", reserve(ttl=duration_pb2.Duration(nanos=5)), {"ttl"}),
    ("ReserveStock", reserve(ttl=duration_pb2.Duration(seconds=3601)), {"ttl"}),
    ("ReserveStock", reserve(ttl=duration_pb2.Duration(seconds=5, nanos=-1)), {"ttl.nanos"}),
    (
        "ReserveStock",
        m.ReserveStockRequest(items=[item(sku="", quantity=0)]),
        {"order_id", "request_id", "items[0].sku", "items[0].quantity"},
    ),
    ("CommitReservation", m.CommitReservationRequest(request_id="r"), {"reservation_id"}),
    ("CommitReservation", m.CommitReservationRequest(reservation_id="x"), {"request_id"}),
    ("ReleaseReservation", m.ReleaseReservationRequest(), {"reservation_id", "request_id"}),
    ("Restock", m.RestockRequest(sku="A", quantity=0, request_id="r"), {"quantity"}),
    ("Restock", m.RestockRequest(sku="A", quantity=1_000_001, request_id="r"), {"quantity"}),
    ("Restock", m.RestockRequest(quantity=1, request_id="r"), {"sku"}),
    ("Restock", m.RestockRequest(sku="A", quantity=1), {"request_id"}),
]


TABLES = ("stock", "reservations", "reservation_items", "requests")


@pytest.mark.parametrize(("method", "request_message", "fields"), CASES)
async def test_bad_input_names_the_fields_and_changes_nothing(
    databases, method, request_message, fields
):
    async with serving("inventory", databases) as server, connect(server) as channel:
        before = snapshot(databases.admin_url("inventory"), *TABLES)
        assert before["stock"]  # seeded: a change would show
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await getattr(inventory.stub(channel), method)(request_message)
        details = error_details(caught.value)
        assert details.code is grpc.StatusCode.INVALID_ARGUMENT
        assert details.fields == fields
        assert details.domain == "shop.inventory.v1"
        assert snapshot(databases.admin_url("inventory"), *TABLES) == before
