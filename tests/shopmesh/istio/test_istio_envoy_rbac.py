"""AuthorizationPolicy grants exactly what envoy/'s sidecar RBAC grants, service by service.

The local mesh's sidecars are rendered (shopmesh.envoy.sidecar, with throwaway
certificates) and their RBAC policies read back: caller identity -> gRPC paths.
Locally `edge` is a workload of its own; in the cluster it is the ingress gateway.
"""

from __future__ import annotations

from typing import Any

import pytest

from shopmesh import topology as mesh_topology
from shopmesh.envoy import common, discovery, sidecar
from shopmesh.identity import certs, tokens

from .istio_consistency import INGRESS_PRINCIPAL, find, granted


@pytest.fixture(scope="module")
def sidecars(tmp_path_factory) -> dict[str, dict[str, Any]]:
    topology = mesh_topology.load()
    root = tmp_path_factory.mktemp("sidecars")
    keys = tokens.SigningKeys.ensure(root / "certs")
    files = common.MeshFiles(
        ca=root / "certs" / "ca.pem", eds_dir=root / "eds", log_dir=root, jwks=keys.jwks_path
    )
    issued = certs.issue_all(root / "certs", topology)
    for service in topology.services:
        discovery.write_endpoints(files.eds_dir, service, [("127.0.0.1", 15000)])
    return {
        service: sidecar.render(service, 0, topology, issued[service], files, app_port=50051)
        for service in topology.services
    }


def _values(node: Any, key: str) -> list[str]:
    """Every `{key: {"exact": value}}` under node."""
    if isinstance(node, list):
        return [v for item in node for v in _values(item, key)]
    if not isinstance(node, dict):
        return []
    found = [node[key]["exact"]] if isinstance(node.get(key), dict) else []
    return found + [v for k, item in node.items() if k != key for v in _values(item, key)]


def _rbac_policies(config: Any) -> list[dict[str, Any]]:
    if isinstance(config, list):
        return [p for item in config for p in _rbac_policies(item)]
    if not isinstance(config, dict):
        return []
    if "policies" in config and config.get("action", "ALLOW") == "ALLOW":
        return list(config["policies"].values())
    return [p for item in config.values() for p in _rbac_policies(item)]


def _envoy_grants(config: dict[str, Any]) -> dict[str, set[str]]:
    edge = mesh_topology.load().spiffe_id("edge")
    grants: dict[str, set[str]] = {}
    for policy in _rbac_policies(config):
        paths = set(_values(policy["permissions"], "path"))
        for spiffe_id in _values(policy["principals"], "principal_name"):
            principal = (
                INGRESS_PRINCIPAL if spiffe_id == edge else spiffe_id.removeprefix("spiffe://")
            )
            grants.setdefault(principal, set()).update(paths)
    return grants


def test_authorization_policies_equal_the_sidecar_rbac(rendered, sidecars) -> None:
    policies = find(rendered["base"], "AuthorizationPolicy")
    for service, config in sidecars.items():
        (policy,) = [
            p for p in policies if p["spec"].get("selector") == {"matchLabels": {"app": service}}
        ]
        envoy = _envoy_grants(config)
        assert envoy, f"no RBAC found in {service}'s sidecar"
        assert granted(policy) == envoy, service
