"""Stopping a server drains it: in-flight calls finish, new ones are refused."""

import asyncio
import contextlib
import dataclasses

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


async def _stubborn(config, store) -> None:
    """A job that loses one cancellation and goes on, as a job does whose cancellation
    arrives just as the connection pool hands it a connection (asyncio.wait_for in
    Python 3.11, inside psycopg_pool, then drops the cancellation)."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(3600)
    await asyncio.sleep(3600)


async def test_stopping_ends_a_background_job_that_lost_a_cancellation(databases):
    service = dataclasses.replace(TOY, background=(_stubborn,))
    async with serving("catalog", databases, service=service) as server:
        await asyncio.sleep(0.1)  # the job is running
        stopping = asyncio.ensure_future(server.stop(0))
        done, _ = await asyncio.wait([stopping], timeout=5)
        if not done:  # end the job after all, so that the test ends
            for job in server.jobs:
                job.cancel()
            await stopping
        assert done, "stop() is still waiting for a job it cancelled"
        assert all(job.done() for job in server.jobs)
