import pytest

from .outage import Outage


@pytest.fixture
def outage(postgres):
    """`outage.begin("inventory")` makes that role's databases unreachable, `outage.end()`
    brings them back (and the fixture does at teardown, whatever happened)."""
    made = Outage(postgres)
    try:
        yield made
    finally:
        made.end()
