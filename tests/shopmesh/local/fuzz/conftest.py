"""The fuzzers' own mesh: one replica of each service, a checkout limit no fuzzer
reaches (the limit is tested elsewhere), and no other test calling it, so every
change in its databases comes from a fuzzer's call."""

import pytest

from shopmesh import topology as mesh_topology
from shopmesh.envoy.edge import EdgeSettings
from shopmesh.local.mesh import start_local_mesh

from .records import Records

# The short form (make test): examples per REST operation and generation mode, and
# per gRPC method and kind. `pytest tests/shopmesh/local/fuzz --fuzz-examples N -s`
# runs a longer one and prints its figures.
SHORT_EXAMPLES = 12


@pytest.fixture(scope="package")
def fuzz_mesh(tmp_path_factory):
    settings = EdgeSettings(port=0, checkout_burst=100_000, checkout_per_second=100_000)
    replicas = dict.fromkeys(mesh_topology.load().services, 1)
    mesh = start_local_mesh(
        tmp_path_factory.mktemp("fuzz-mesh"),
        replicas=replicas,
        edge_settings=settings,
        drain_seconds=1,
    )
    try:
        yield mesh
    finally:
        mesh.stop()


@pytest.fixture(scope="package")
def records(fuzz_mesh):
    with Records(fuzz_mesh) as opened:
        yield opened


@pytest.fixture(scope="session")
def fuzz_examples(request) -> int:
    return request.config.getoption("--fuzz-examples") or SHORT_EXAMPLES
