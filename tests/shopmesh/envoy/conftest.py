import pathlib
import shutil
import subprocess
import sys

import pytest

from shopmesh import topology as mesh_topology
from shopmesh.envoy import common, descriptor, discovery, edge, openapi, routing, sidecar
from shopmesh.identity import certs, tokens

ENVOY = pathlib.Path(sys.executable).parent / "envoy"


@pytest.fixture(scope="session")
def topology():
    return mesh_topology.load()


@pytest.fixture(scope="session")
def mesh_files(tmp_path_factory, topology):
    """Throwaway certificates and discovery files, as a run directory would hold them."""
    root = tmp_path_factory.mktemp("render")
    keys = tokens.SigningKeys.ensure(root / "certs")
    files = common.MeshFiles(
        ca=root / "certs" / "ca.pem",
        eds_dir=root / "eds",
        log_dir=root,
        jwks=keys.jwks_path,
        runtime_dir=root / "runtime",
    )
    issued = certs.issue_all(root / "certs", topology)
    for service in topology.services:
        discovery.write_endpoints(files.eds_dir, service, [("127.0.0.1", 15000)])
        discovery.write_endpoints(files.eds_dir, routing.canary_cluster(service), [])
    routing.write_weights(files.runtime_dir, {})
    return root, files, issued


@pytest.fixture(scope="session")
def configs(mesh_files, topology) -> dict[str, dict]:
    """Every Envoy bootstrap of a mesh with one replica per service, by proxy name."""
    root, files, issued = mesh_files
    transcoder = descriptor.write_transcoder_descriptor(root / "transcoder.binpb")
    spec = openapi.write(root / "openapi.json")
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
