import pytest

from services.runtime.testing import serving


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("order")


@pytest.fixture
async def order_alone(data_dir):
    """The order service with its upstreams at a closed port: a test that must be refused
    before anything is called fails loudly if something is."""
    env = {
        f"SHOPMESH_UPSTREAM_{name}": "127.0.0.1:1" for name in ("CATALOG", "INVENTORY", "PAYMENT")
    }
    async with serving("order", data_dir, env) as server:
        yield server
