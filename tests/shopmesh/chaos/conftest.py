import pytest

from mesh import breakers


@pytest.fixture(autouse=True)
def fresh_breakers():
    # The ops client's breakers live in this process: one scenario's outage must
    # not leave the next scenario's checker failing fast.
    breakers.reset_all()
    yield
    breakers.reset_all()
