import itertools

import pytest

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
