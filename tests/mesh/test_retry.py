"""Retries: only safe calls, only transient failures, within the deadline and the budget.

Every test using the `connect` fixture runs through both mesh.aio_connect and mesh.connect.
"""

import time

import grpc
import pytest

import mesh
from mesh import breakers
from mesh.interceptors import RetryPolicy
from mesh.retry_budget import RetryBudget

from .scripted_server import Script, catalog, config_for, payment

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


async def get_product(connect, address, name, retry=None, deadline_s=None):
    async with connect(name, config=config_for(address, name), retry=retry) as stub:
        return await stub(catalog).GetProduct(
            catalog.messages.GetProductRequest(id="p-1"), timeout=deadline_s
        )


async def test_transient_unavailable_is_retried_until_it_succeeds(connect, scripted, upstream_name):
    script = Script(failures=[UNAVAILABLE, UNAVAILABLE])
    address = await scripted(script)
    response = await get_product(connect, address, upstream_name)
    assert response.product.id == "p-1"
    assert script.calls == 3


async def test_resource_exhausted_is_retried_too(connect, scripted, upstream_name):
    script = Script(failures=[grpc.StatusCode.RESOURCE_EXHAUSTED])
    address = await scripted(script)
    await get_product(connect, address, upstream_name)
    assert script.calls == 2


@pytest.mark.parametrize(
    "code",
    [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INTERNAL],
)
async def test_non_transient_errors_are_not_retried(connect, scripted, upstream_name, code):
    script = Script(failures=[code])
    address = await scripted(script)
    with pytest.raises(grpc.RpcError) as error:
        await get_product(connect, address, upstream_name)
    assert error.value.code() == code
    assert script.calls == 1


async def charge(connect, address, name, request_id):
    async with connect(name, config=config_for(address, name)) as stub:
        request = payment.messages.ChargeRequest(order_id="o-1", request_id=request_id)
        return await stub(payment).Charge(request)


async def test_mutation_without_request_id_is_not_retried(connect, scripted, upstream_name):
    script = Script(failures=[UNAVAILABLE])
    address = await scripted(script)
    with pytest.raises(grpc.RpcError) as error:
        await charge(connect, address, upstream_name, request_id="")
    assert error.value.code() == UNAVAILABLE
    assert script.calls == 1


async def test_mutation_with_request_id_is_retried(connect, scripted, upstream_name):
    script = Script(failures=[UNAVAILABLE])
    address = await scripted(script)
    response = await charge(connect, address, upstream_name, request_id="req-1")
    assert response.payment.order_id == "o-1"
    assert script.calls == 2


async def test_app_retries_switched_off_for_a_hop_a_proxy_retries(connect, scripted, upstream_name):
    script = Script(failures=[UNAVAILABLE])
    address = await scripted(script)
    config = config_for(address, upstream_name, app_retries=False)
    async with connect(upstream_name, config=config) as stub:
        with pytest.raises(grpc.RpcError):
            await stub(catalog).GetProduct(catalog.messages.GetProductRequest(id="p"))
    assert script.calls == 1


async def test_retries_stop_at_the_deadline(connect, scripted, upstream_name):
    script = Script(always=UNAVAILABLE, delay=0.05)
    address = await scripted(script)
    patient = RetryPolicy(max_attempts=100, base_backoff=0.05, max_backoff=0.1)
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as error:
        await get_product(connect, address, upstream_name, retry=patient, deadline_s=0.4)
    elapsed = time.monotonic() - started
    assert error.value.code() in {UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
    assert 1 < script.calls < 100
    # No attempt may start after the deadline; allow scheduling slack on a busy machine.
    assert elapsed < 0.4 + 0.25


async def test_retry_budget_caps_extra_attempts_in_an_outage(
    connect, scripted, upstream_name, monkeypatch
):
    script = Script(always=UNAVAILABLE)
    address = await scripted(script)
    budget = RetryBudget(ratio=0.2, min_retries=5, window=60)
    breakers.breaker_for(upstream_name, fail_max=10_000)  # keep the breaker out of the count
    monkeypatch.setattr(mesh.channel, "_budgets", {upstream_name: budget})
    quick = RetryPolicy(max_attempts=3, base_backoff=0.001, max_backoff=0.002)
    calls = 50
    config = config_for(address, upstream_name)
    async with connect(upstream_name, config=config, retry=quick) as stub:
        for _ in range(calls):
            with pytest.raises(grpc.RpcError):
                await stub(catalog).GetProduct(catalog.messages.GetProductRequest(id="p"))
    # Without a budget an outage would see calls * max_attempts = 150 attempts.
    extra = script.calls - calls
    assert 0 < extra <= 5 + 0.2 * calls
