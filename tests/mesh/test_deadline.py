"""Deadlines: the contract's default applies, and downstream never gets more than upstream had."""

import asyncio

import grpc
import pytest

import mesh
from mesh import contracts
from services.runtime.interceptors import InboundDeadline

from .scripted_server import Script, catalog, config_for

REQUEST = catalog.messages.GetProductRequest(id="p-1")
# gRPC transmits deadlines with coarse units, so a received deadline can read a hair late.
WIRE_ROUNDING = 0.01
GET_PRODUCT_DEFAULT = contracts.method_policy("/shop.catalog.v1.CatalogService/GetProduct").timeout


async def two_hops(scripted, upstream_name):
    """caller -> front (forwards via mesh.aio_connect) -> back; returns both scripts."""
    back = Script()
    back_address = await scripted(back)
    onward = mesh.aio_connect(upstream_name, config=config_for(back_address, upstream_name))
    front = Script(forward=lambda request: catalog.stub(onward).GetProduct(request))
    front_address = await scripted(front, interceptors=(InboundDeadline(),))
    return front, back, front_address, onward


async def test_downstream_sees_no_later_deadline_than_the_caller(scripted, upstream_name):
    front, back, front_address, onward = await two_hops(scripted, upstream_name)
    async with grpc.aio.insecure_channel(front_address) as channel:
        await catalog.stub(channel).GetProduct(REQUEST, timeout=0.3)
    await onward.close()
    [front_left], [back_left] = front.time_remaining, back.time_remaining
    assert 0 < back_left <= front_left + WIRE_ROUNDING <= 0.3 + 2 * WIRE_ROUNDING


async def test_a_caller_with_a_long_deadline_still_bounds_downstream(scripted, upstream_name):
    _front, back, front_address, onward = await two_hops(scripted, upstream_name)
    async with grpc.aio.insecure_channel(front_address) as channel:
        # The caller allows 30 s but the downstream hop's contract default is shorter.
        await catalog.stub(channel).GetProduct(REQUEST, timeout=30)
    await onward.close()
    assert 0 < back.time_remaining[0] <= GET_PRODUCT_DEFAULT + WIRE_ROUNDING


async def test_calls_without_a_timeout_get_the_contract_default(scripted, upstream_name):
    script = Script()
    address = await scripted(script)
    async with mesh.aio_connect(upstream_name, config=config_for(address, upstream_name)) as ch:
        await catalog.stub(ch).GetProduct(REQUEST)
    assert 0 < script.time_remaining[0] <= GET_PRODUCT_DEFAULT + WIRE_ROUNDING


async def test_expired_inbound_deadline_fails_downstream_call_without_sending(
    scripted, upstream_name
):
    front, back, front_address, onward = await two_hops(scripted, upstream_name)
    front.delay = 0.3  # the front spends its whole budget before calling onwards
    async with grpc.aio.insecure_channel(front_address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await catalog.stub(channel).GetProduct(REQUEST, timeout=0.2)
    await onward.close()
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert back.calls == 0


async def test_sync_channel_applies_the_contract_default(scripted, upstream_name):
    script = Script()
    address = await scripted(script)

    def call() -> None:
        with mesh.connect(upstream_name, config=config_for(address, upstream_name)) as channel:
            catalog.stub(channel).GetProduct(REQUEST)

    await asyncio.to_thread(call)
    assert 0 < script.time_remaining[0] <= GET_PRODUCT_DEFAULT + WIRE_ROUNDING
