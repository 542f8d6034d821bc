"""An asyncio mesh call behaves as a grpc.aio call: awaitable (more than once), with its
status, details and metadata, done callbacks and cancellation.

mesh.aio_connect runs the client chain inside the call object it returns rather than
in grpc.aio interceptors (mesh/interceptors/_aio_chain.py), so this is its own code.
"""

import asyncio

import grpc
import pytest

import mesh

from .scripted_server import Script, catalog, config_for

REQUEST = catalog.messages.GetProductRequest(id="p-1")


async def test_a_call_answers_every_await_and_reports_ok(scripted, upstream_name):
    address = await scripted(Script())
    async with mesh.aio_connect(upstream_name, config=config_for(address, upstream_name)) as ch:
        call = catalog.stub(ch).GetProduct(REQUEST)
        first, second = await call, await call
        assert first.product.id == second.product.id == "p-1"
        assert call.done() and not call.cancelled()
        assert await call.code() == grpc.StatusCode.OK
        assert await call.details() == ""
        assert isinstance(await call.trailing_metadata(), grpc.aio.Metadata)


async def test_a_failed_call_reports_its_status_without_being_awaited(scripted, upstream_name):
    address = await scripted(Script(always=grpc.StatusCode.NOT_FOUND))
    async with mesh.aio_connect(upstream_name, config=config_for(address, upstream_name)) as ch:
        call = catalog.stub(ch).GetProduct(REQUEST)
        assert await call.code() == grpc.StatusCode.NOT_FOUND
        assert await call.details() == "scripted NOT_FOUND"
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_two_awaiters_at_once_get_the_same_answer(scripted, upstream_name):
    script = Script(failures=[grpc.StatusCode.UNAVAILABLE], delay=0.05)
    address = await scripted(script)
    async with mesh.aio_connect(upstream_name, config=config_for(address, upstream_name)) as ch:
        call = catalog.stub(ch).GetProduct(REQUEST)
        first, second = await asyncio.gather(call, call)
    assert first == second
    assert script.calls == 2  # one retry, made once


async def test_done_callbacks_run_though_nobody_awaits(scripted, upstream_name):
    address = await scripted(Script())
    async with mesh.aio_connect(upstream_name, config=config_for(address, upstream_name)) as ch:
        done = asyncio.Event()
        call = catalog.stub(ch).GetProduct(REQUEST)
        call.add_done_callback(lambda finished: done.set())
        await asyncio.wait_for(done.wait(), 5)
        assert call.done()


async def test_a_cancelled_call_stops_and_raises_cancelled(scripted, upstream_name):
    script = Script(delay=5)
    address = await scripted(script)
    async with mesh.aio_connect(upstream_name, config=config_for(address, upstream_name)) as ch:
        call = catalog.stub(ch).GetProduct(REQUEST)
        await asyncio.sleep(0.05)
        assert call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert call.cancelled()
        assert await call.code() == grpc.StatusCode.CANCELLED


async def test_cancelling_the_awaiting_task_cancels_the_call(scripted, upstream_name):
    address = await scripted(Script(delay=5))
    async with mesh.aio_connect(upstream_name, config=config_for(address, upstream_name)) as ch:
        call = catalog.stub(ch).GetProduct(REQUEST)
        waiter = asyncio.ensure_future(call)
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert call.done() and call.cancelled()
