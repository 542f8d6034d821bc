"""The order app itself refuses a call without a verified end user, whatever reached it.

The app is called directly, as a process on the sidecar's loopback would be: no
sidecar-set claims header (or a mangled one) means no end user, and no RPC
answers anything but UNAUTHENTICATED. Nothing is read or written: the upstreams
point at a closed port and the database stays empty.
"""

from __future__ import annotations

import base64
import json
import uuid

import grpc
import pytest
from shop.order.v1 import order_pb2

from mesh import contracts
from services.runtime.end_user import CLAIMS_HEADER
from services.runtime.testing import connect, end_user_metadata, error_details

from ..rows import query
from .checkout import place_request

CALLS = {
    "PlaceOrder": lambda: place_request(customer_id=""),
    "GetOrder": lambda: order_pb2.GetOrderRequest(id=str(uuid.uuid4())),
    "ListOrders": lambda: order_pb2.ListOrdersRequest(),
    "CancelOrder": lambda: order_pb2.CancelOrderRequest(
        id=str(uuid.uuid4()), request_id=str(uuid.uuid4())
    ),
}


def _claims(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()


NOT_AN_END_USER = {
    "no claims header": (),
    "not base64 JSON": ((CLAIMS_HEADER, "Bearer eyJhbGciOiJub25lIn0"),),
    "claims without a subject": ((CLAIMS_HEADER, _claims({"scope": "shop.ops"})),),
    "a subject that is not a string": ((CLAIMS_HEADER, _claims({"sub": ["ada"]})),),
    "two claims headers": (*end_user_metadata("ada"), *end_user_metadata("bob")),
}


@pytest.fixture
async def stub(order_alone):
    async with connect(order_alone) as channel:
        yield contracts.service("order").stub(channel)


@pytest.mark.parametrize("method", sorted(CALLS))
@pytest.mark.parametrize("case", sorted(NOT_AN_END_USER))
async def test_a_call_without_a_verified_end_user_gets_nothing(stub, databases, method, case):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, method)(CALLS[method](), metadata=NOT_AN_END_USER[case], timeout=5)
    details = error_details(caught.value)
    assert details.code == grpc.StatusCode.UNAUTHENTICATED, details
    assert details.reason == "UNAUTHENTICATED" and details.domain == "shop.order.v1"
    assert query(databases.admin_url("order"), "SELECT count(*) FROM orders") == [(0,)]


async def test_a_customer_may_not_name_another_customer(stub):
    for method, request in (
        ("PlaceOrder", place_request(customer_id="bob")),
        ("ListOrders", order_pb2.ListOrdersRequest(customer_id="bob")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await getattr(stub, method)(request, metadata=end_user_metadata("ada"), timeout=5)
        details = error_details(caught.value)
        assert details.code == grpc.StatusCode.PERMISSION_DENIED, (method, details)
        assert (details.reason, details.metadata) == ("CUSTOMER_MISMATCH", {"customer_id": "bob"})
