"""Handler exceptions reach clients as google.rpc.Status with the right details."""

import logging

import grpc
import pytest

from mesh import contracts
from services.runtime.testing import connect, error_details, serving

from .toy import TOY

catalog = contracts.service("catalog")
GetProductRequest = catalog.messages.GetProductRequest


@pytest.fixture
async def stub(databases):
    async with serving("catalog", databases, service=TOY) as server, connect(server) as channel:
        yield catalog.stub(channel)


async def _error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_invalid_argument_carries_error_info_and_field_violations(stub):
    details = error_details(await _error(stub.GetProduct(GetProductRequest(id=" "))))
    assert details.code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.domain == "shop.catalog.v1"
    assert details.reason == "INVALID_REQUEST"
    assert details.field_violations == {"id": "is required"}


async def test_not_found_carries_reason_domain_and_metadata(stub):
    details = error_details(await _error(stub.GetProduct(GetProductRequest(id="missing"))))
    assert details.code is grpc.StatusCode.NOT_FOUND
    assert (details.reason, details.domain) == ("NOT_FOUND", "shop.catalog.v1")
    assert details.metadata == {"id": "missing"}


async def test_unexpected_exception_is_internal_with_trace_id_and_no_internals(stub, caplog):
    with caplog.at_level(logging.ERROR, logger="shopmesh.errors"):
        error = await _error(stub.GetProduct(GetProductRequest(id="boom")))
    details = error_details(error)
    assert details.code is grpc.StatusCode.INTERNAL
    trace_id = details.metadata["trace_id"]
    assert len(trace_id) == 32 and trace_id in details.message
    assert "shadow" not in details.message and "Traceback" not in details.message
    # The full stack goes to the log, tagged with the same trace id.
    [record] = [r for r in caplog.records if r.name == "shopmesh.errors"]
    assert record.trace_id == trace_id and "RuntimeError" in caplog.text
