"""Stopping a server drains it: in-flight calls finish, new ones are refused."""

import asyncio

import grpc
import pytest

from mesh import contracts
from services.runtime.testing import connect, serving

from .toy import TOY

catalog = contracts.service("catalog")


async def test_in_flight_call_finishes_during_drain_and_new_calls_are_refused(databases):
    async with serving("catalog", databases, service=TOY) as server, connect(server) as channel:
        stub = catalog.stub(channel)
        slow = asyncio.ensure_future(
            stub.GetProduct(catalog.messages.GetProductRequest(id="slow-800"))
        )
        await asyncio.sleep(0.3)  # the call is now in the handler
        stopping = asyncio.ensure_future(server.stop(grace=10))
        await asyncio.sleep(0.1)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetProduct(catalog.messages.GetProductRequest(id="new"), timeout=5)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert (await slow).product.id == "slow-800"
        await stopping
