import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

import mesh
from mesh import breakers

from . import scripted_server

_names = itertools.count()


@pytest.fixture
def upstream_name() -> str:
    """A fresh upstream name, so breakers and retry budgets never leak between tests."""
    return f"upstream-{next(_names)}"


@pytest.fixture
async def scripted():
    """Start scripted servers; all stopped at the end of the test."""
    servers = []

    async def start(script, interceptors=()):
        server, address = await scripted_server.start(script, interceptors)
        servers.append(server)
        return address

    yield start
    for server in servers:
        await server.stop(None)


@pytest.fixture(autouse=True)
def _fresh_breakers():
    yield
    breakers.reset_all()


class _InThread:
    """A sync stub whose calls run in a worker thread and are awaited, like an aio stub's.

    The scripted servers live on the test's event loop, so a blocking call must not
    run on it. Errors are raised as the sync API raises them (grpc.RpcError).
    """

    def __init__(self, stub: Any) -> None:
        self._stub = stub

    def __getattr__(self, method: str) -> Callable[..., Any]:
        blocking = getattr(self._stub, method)

        async def call(request: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(blocking, request, **kwargs)

        return call


@asynccontextmanager
async def _open(flavour: str, name: str, **options: Any) -> AsyncIterator[Callable[[Any], Any]]:
    if flavour == "aio":
        async with mesh.aio_connect(name, **options) as channel:
            yield lambda service: service.stub(channel)
        return
    channel = mesh.connect(name, **options)
    try:
        yield lambda service: _InThread(service.stub(channel))
    finally:
        channel.close()


@pytest.fixture(params=["aio", "sync"])
def connect(request) -> Callable[..., Any]:
    """Each test using it runs twice: through mesh.aio_connect and through mesh.connect.

        async with connect(name, config=..., retry=...) as stub:
            response = await stub(catalog).GetProduct(request, timeout=0.4)

    Both flavours' errors are grpc.RpcError (aio's AioRpcError is one).
    """
    return lambda name, **options: _open(request.param, name, **options)
