import pytest

from mesh import breakers

from .shop import whole_shop


@pytest.fixture(autouse=True)
def fresh_breakers():
    # Breakers are per process: a test that stops an upstream must not trip the next test.
    breakers.reset_all()
    yield
    breakers.reset_all()


@pytest.fixture
async def shop(tmp_path):
    async with whole_shop(tmp_path) as shop:
        yield shop
