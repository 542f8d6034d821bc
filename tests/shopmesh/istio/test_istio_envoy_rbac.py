"""AuthorizationPolicy grants exactly what envoy/'s sidecar RBAC grants, service by service,
and end users' tokens are required on the same calls, from the same issuer, in both meshes.

The local mesh's sidecars and edge are rendered (shopmesh.envoy, with throwaway
certificates) and their RBAC policies and jwt_authn filters read back: caller
identity -> gRPC paths, with or without a verified end user. Locally `edge` is
a workload of its own; in the cluster it is the ingress gateway.
"""

from __future__ import annotations

from typing import Any

import pytest

from shopmesh import topology as mesh_topology
from shopmesh.envoy import edge, end_users, examples, sidecar

from .istio_consistency import (
    INGRESS_NAMESPACE,
    INGRESS_PRINCIPAL,
    SERVICE_LABEL,
    end_user_required,
    find,
    granted,
    istio_path_matches,
)


@pytest.fixture(scope="module")
def proxies(tmp_path_factory) -> dict[str, dict[str, Any]]:
    """Every local proxy's bootstrap: "edge" and each service's sidecar."""
    topology = mesh_topology.load()
    root = tmp_path_factory.mktemp("proxies")
    files, issued = examples.throwaway_mount(root)
    rendered = {
        service: sidecar.render(service, 0, topology, issued[service], files, app_port=50051)
        for service in topology.services
    }
    rendered["edge"] = edge.render(
        topology, issued["edge"], files, root / "transcoder.binpb", spec=root / "openapi.json"
    )
    return rendered


@pytest.fixture(scope="module")
def sidecars(proxies) -> dict[str, dict[str, Any]]:
    return {name: config for name, config in proxies.items() if name != "edge"}


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


def _envoy_grants(config: dict[str, Any], only_with_end_user: bool = False) -> dict[str, set[str]]:
    """principal -> paths; only those granted with a verified end user if asked."""
    edge_id = mesh_topology.load().spiffe_id("edge")
    grants: dict[str, set[str]] = {}
    for policy in _rbac_policies(config):
        if only_with_end_user and end_users.principal() not in _flat(policy["principals"]):
            continue
        paths = set(_values(policy["permissions"], "path"))
        for spiffe_id in _values(policy["principals"], "principal_name"):
            principal = (
                INGRESS_PRINCIPAL if spiffe_id == edge_id else spiffe_id.removeprefix("spiffe://")
            )
            grants.setdefault(principal, set()).update(paths)
    return grants


def _flat(node: Any) -> list[Any]:
    """Every dict and list nested in node, node included."""
    if isinstance(node, dict):
        return [node, *(x for v in node.values() for x in _flat(v))]
    if isinstance(node, list):
        return [node, *(x for v in node for x in _flat(v))]
    return []


def _jwt_filters(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        f["typed_config"]
        for f in _flat(config)
        if isinstance(f, dict) and f.get("name") == end_users.JWT_FILTER
    ]


def test_authorization_policies_equal_the_sidecar_rbac(rendered, sidecars) -> None:
    policies = find(rendered["base"], "AuthorizationPolicy")
    for service, config in sidecars.items():
        (policy,) = [
            p
            for p in policies
            if p["spec"].get("selector") == {"matchLabels": {SERVICE_LABEL: service}}
        ]
        envoy = _envoy_grants(config)
        assert envoy, f"no RBAC found in {service}'s sidecar"
        assert granted(policy) == envoy, service


def _request_authentications(rendered, namespace: str) -> list[dict[str, Any]]:
    return [
        d["spec"]["jwtRules"][0]
        for d in find(rendered["base"], "RequestAuthentication")
        if d["metadata"]["namespace"] == namespace
    ]


def test_end_users_are_required_on_the_same_calls_in_both_meshes(rendered, sidecars) -> None:
    policies = find(rendered["base"], "AuthorizationPolicy")
    required_somewhere = False
    for service, config in sidecars.items():
        (policy,) = [
            p
            for p in policies
            if p["spec"].get("selector") == {"matchLabels": {SERVICE_LABEL: service}}
        ]
        envoy = _envoy_grants(config, only_with_end_user=True)
        assert end_user_required(policy) == envoy, service
        required_somewhere |= bool(envoy)
    assert required_somewhere  # order's callers all need one


def test_both_meshes_trust_one_issuer_and_audience_and_hand_over_the_same_claims(
    rendered, proxies
) -> None:
    topology = mesh_topology.load()
    istio_rules = _request_authentications(rendered, "shop") + _request_authentications(
        rendered, INGRESS_NAMESPACE
    )
    envoy_providers = [
        f["providers"]["end_users"] for config in proxies.values() for f in _jwt_filters(config)
    ]
    # The edge, and one sidecar and one workload per service acting for end users.
    expected = 1 + len(topology.end_user_services)
    assert len(envoy_providers) == len(istio_rules) == expected
    for provider in envoy_providers:
        assert (provider["issuer"], provider["audiences"]) == (
            topology.end_users.issuer,
            [topology.end_users.audience],
        )
    for rule in istio_rules:
        assert (rule["issuer"], rule["audiences"]) == (
            topology.end_users.issuer,
            [topology.end_users.audience],
        )
    # Where the app gets the verified claims: the same header, which the services read.
    sidecar_headers = {p.get("forward_payload_header") for p in envoy_providers} - {None}
    workload_headers = {r.get("outputPayloadToHeader") for r in istio_rules} - {None}
    assert sidecar_headers == workload_headers == {end_users.CLAIMS_HEADER}


def test_the_edge_and_the_gateway_refuse_the_same_rpcs_without_a_token(rendered, proxies) -> None:
    listener = proxies["edge"]["static_resources"]["listeners"][0]
    routes = listener["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]
    needing = {
        route["match"]["path"]: route["typed_per_filter_config"][end_users.JWT_FILTER][
            "requirement_name"
        ]
        == end_users.ROUTE_REQUIRES_CUSTOMER
        for route in routes["virtual_hosts"][0]["routes"]
        if "path" in route["match"] and "route" in route  # RPCs, not the OpenAPI description
    }
    (deny,) = [
        d
        for d in find(rendered["base"], "AuthorizationPolicy")
        if d["metadata"]["namespace"] == INGRESS_NAMESPACE
    ]
    patterns = [p for rule in deny["spec"]["rules"] for p in rule["to"][0]["operation"]["paths"]]
    refused = {path: any(istio_path_matches(p, path) for p in patterns) for path in needing}
    assert refused == needing
    assert any(needing.values()) and not all(needing.values())  # orders yes, catalog no
