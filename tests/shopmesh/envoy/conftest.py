import pathlib
import shutil
import subprocess
import sys

import pytest

from shopmesh import topology as mesh_topology
from shopmesh.envoy import edge, examples, sidecar

ENVOY = pathlib.Path(sys.executable).parent / "envoy"


@pytest.fixture(scope="session")
def topology():
    return mesh_topology.load()


@pytest.fixture(scope="session")
def mesh_files(tmp_path_factory):
    """Throwaway certificates, discovery and runtime files, the transcoder's descriptor
    and the OpenAPI description, as a run directory (or a deployment's mount) holds them."""
    root = tmp_path_factory.mktemp("render")
    files, issued = examples.throwaway_mount(root)
    return root, files, issued


@pytest.fixture(scope="session")
def configs(mesh_files, topology) -> dict[str, dict]:
    """Every Envoy bootstrap of a mesh with one replica per service, by proxy name."""
    root, files, issued = mesh_files
    transcoder, spec = root / "transcoder.binpb", root / "openapi.json"
    rendered = {"edge": edge.render(topology, issued["edge"], files, transcoder, spec=spec)}
    for service in topology.services:
        rendered[sidecar.proxy_name(service, 0)] = sidecar.render(
            service, 0, topology, issued[service], files, app_port=50051
        )
    return rendered


@pytest.fixture(scope="session")
def validate():
    """Runs `envoy --mode validate -c PATH`."""
    envoy = str(ENVOY) if ENVOY.exists() else shutil.which("envoy")
    assert envoy, "no envoy binary: make install"

    def run(config_path: pathlib.Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [envoy, "--mode", "validate", "-c", str(config_path), "--log-level", "error"],
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run
