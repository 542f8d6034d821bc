import pytest

from shopmesh.envoy.edge import EdgeSettings
from shopmesh.local.mesh import LocalMesh

# Per customer: low enough for one customer's burst to exceed, high enough for
# the other tests' checkouts in a row by one customer.
CHECKOUT_BURST = 10
CHECKOUT_PER_SECOND = 5


@pytest.fixture(scope="session")
def mesh(tmp_path_factory):
    """The whole local mesh (2 replicas of each service, sidecars, edge), started once."""
    settings = EdgeSettings(
        port=0, checkout_burst=CHECKOUT_BURST, checkout_per_second=CHECKOUT_PER_SECOND
    )
    with LocalMesh(
        tmp_path_factory.mktemp("mesh"), edge_settings=settings, drain_seconds=1
    ) as running:
        yield running
