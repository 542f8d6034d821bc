import pytest

from services.runtime.testing import serving


@pytest.fixture
async def order_alone(databases):
    """The order service with its upstreams at a closed port: a test that must be refused
    before anything is called fails loudly if something is."""
    env = {
        f"SHOPMESH_UPSTREAM_{name}": "127.0.0.1:1" for name in ("CATALOG", "INVENTORY", "PAYMENT")
    }
    async with serving("order", databases, env) as server:
        yield server
