"""Circuit breaker: opens on upstream failures only, fails fast, probes, closes.

Every test using the `connect` fixture runs through both mesh.aio_connect and mesh.connect.
"""

import asyncio
import time

import grpc
import pybreaker
import pytest
from prometheus_client import REGISTRY

import mesh
from mesh import breakers
from mesh.interceptors import BreakerInterceptor, RetryPolicy

from .scripted_server import Script, catalog, config_for

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
NO_RETRY = RetryPolicy(enabled=False)
REQUEST = catalog.messages.GetProductRequest(id="p-1")


def state_metric(upstream):
    return REGISTRY.get_sample_value("shopmesh_client_breaker_state", {"upstream": upstream})


async def test_breaker_opens_fails_fast_half_opens_and_closes(connect, scripted, upstream_name):
    breaker = breakers.breaker_for(upstream_name, fail_max=5, reset_timeout=0.3)
    script = Script(failures=[UNAVAILABLE] * 5)
    address = await scripted(script)
    config = config_for(address, upstream_name)
    async with connect(upstream_name, config=config, retry=NO_RETRY) as open_stub:
        stub = open_stub(catalog)
        for _ in range(5):
            with pytest.raises(grpc.RpcError) as error:
                await stub.GetProduct(REQUEST)
            assert error.value.code() == UNAVAILABLE
        assert breaker.current_state == pybreaker.STATE_OPEN
        assert state_metric(upstream_name) == 2

        with pytest.raises(grpc.RpcError) as error:
            await stub.GetProduct(REQUEST)
        assert error.value.code() == UNAVAILABLE
        assert f"circuit breaker '{upstream_name}' is open" in error.value.details()
        assert script.calls == 5  # the open-state call never reached the server

        await asyncio.sleep(0.35)
        # Half-open: the probe goes through, succeeds, and closes the breaker.
        response = await stub.GetProduct(REQUEST)
        assert response.product.id == "p-1"
        assert script.calls == 6
        assert breaker.current_state == pybreaker.STATE_CLOSED
        assert state_metric(upstream_name) == 0


async def test_only_one_probe_at_a_time_while_half_open(connect, scripted, upstream_name):
    breaker = breakers.breaker_for(upstream_name, fail_max=1, reset_timeout=0.2)
    script = Script(failures=[UNAVAILABLE])
    address = await scripted(script)
    config = config_for(address, upstream_name)
    async with connect(upstream_name, config=config, retry=NO_RETRY) as open_stub:
        stub = open_stub(catalog)
        with pytest.raises(grpc.RpcError):
            await stub.GetProduct(REQUEST)
        assert breaker.current_state == pybreaker.STATE_OPEN
        await asyncio.sleep(0.25)
        script.delay = 0.2  # the probe takes a while; others arrive meanwhile
        results = await asyncio.gather(
            *(stub.GetProduct(REQUEST) for _ in range(5)), return_exceptions=True
        )
    succeeded = [r for r in results if not isinstance(r, Exception)]
    rejected = [r for r in results if isinstance(r, grpc.RpcError)]
    assert len(succeeded) == 1 and len(rejected) == 4
    assert all("is open" in r.details() for r in rejected)
    assert script.calls == 2
    assert breaker.current_state == pybreaker.STATE_CLOSED


async def test_failed_probe_reopens(connect, scripted, upstream_name):
    breaker = breakers.breaker_for(upstream_name, fail_max=2, reset_timeout=0.2)
    script = Script(always=grpc.StatusCode.DEADLINE_EXCEEDED)
    address = await scripted(script)
    config = config_for(address, upstream_name)
    async with connect(upstream_name, config=config, retry=NO_RETRY) as open_stub:
        stub = open_stub(catalog)
        for _ in range(2):
            with pytest.raises(grpc.RpcError):
                await stub.GetProduct(REQUEST)
        await asyncio.sleep(0.25)
        with pytest.raises(grpc.RpcError):
            await stub.GetProduct(REQUEST)
    assert script.calls == 3
    assert breaker.current_state == pybreaker.STATE_OPEN


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
    ],
)
async def test_callers_errors_never_open_the_breaker(connect, scripted, upstream_name, code):
    breaker = breakers.breaker_for(upstream_name, fail_max=3)
    script = Script(always=code)
    address = await scripted(script)
    config = config_for(address, upstream_name)
    async with connect(upstream_name, config=config, retry=NO_RETRY) as open_stub:
        stub = open_stub(catalog)
        for _ in range(20):
            with pytest.raises(grpc.RpcError) as error:
                await stub.GetProduct(REQUEST)
            assert error.value.code() == code
    assert script.calls == 20
    assert breaker.current_state == pybreaker.STATE_CLOSED


async def test_open_breaker_stops_retries_at_once(connect, scripted, upstream_name):
    breakers.breaker_for(upstream_name, fail_max=2, reset_timeout=30)
    script = Script(always=UNAVAILABLE)
    address = await scripted(script)
    patient = RetryPolicy(max_attempts=10, base_backoff=0.001, max_backoff=0.002)
    config = config_for(address, upstream_name)
    async with connect(upstream_name, config=config, retry=patient) as open_stub:
        stub = open_stub(catalog)
        with pytest.raises(grpc.RpcError) as error:
            await stub.GetProduct(REQUEST)
        # The answer is the last attempt that reached the upstream: it may have acted.
        assert script.calls == 2
        assert error.value.details() == "scripted UNAVAILABLE"
        assert not mesh.never_sent(error.value)
        # A call the open breaker refuses outright is known never to have been sent.
        with pytest.raises(grpc.RpcError) as refused:
            await stub.GetProduct(REQUEST)
        assert "is open" in refused.value.details() and mesh.never_sent(refused.value)
    assert script.calls == 2


def test_open_breaker_rejection_costs_well_under_a_millisecond(upstream_name):
    breaker = breakers.breaker_for(upstream_name, fail_max=1, reset_timeout=60)
    breaker.open()
    # The breaker alone (tracing would add its own span per call): nothing listens at this
    # address, so a call that reached the network would fail slowly.
    channel = grpc.intercept_channel(
        grpc.insecure_channel("127.0.0.1:9"), BreakerInterceptor(upstream_name)
    )
    stub = catalog.stub(channel)
    errors, per_batch = [], []
    for _ in range(10):
        cpu_started = time.thread_time()
        for _ in range(20):
            try:
                stub.GetProduct(REQUEST, timeout=5)
            except grpc.RpcError as error:
                errors.append(error)
        per_batch.append((time.thread_time() - cpu_started) / 20)
    channel.close()
    assert len(errors) == 200
    assert all(e.code() == UNAVAILABLE and "is open" in e.details() for e in errors)
    # CPU time of this thread, median over batches: immune to other processes' load.
    per_call = sorted(per_batch)[len(per_batch) // 2]
    assert per_call < 0.0002, f"{per_call * 1e6:.0f} µs of CPU per rejected call"


async def test_rejecting_says_whether_a_call_would_be_refused_now(upstream_name):
    breaker = breakers.breaker_for(upstream_name, fail_max=1, reset_timeout=0.2)
    assert not breakers.rejecting(upstream_name)
    breaker.open()
    assert breakers.rejecting(upstream_name)
    await asyncio.sleep(0.25)
    assert not breakers.rejecting(upstream_name)  # a probe is due: let callers try
    assert not breakers.rejecting("never-called")
