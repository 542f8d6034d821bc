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
async def shop(databases):
    async with whole_shop(databases) as shop:
        yield shop
