"""Who may talk to whom: mTLS everywhere, deny by default, then the topology's call graph
(and, for a service that acts for end users, an end user's token: see end_users.py).

AuthorizationPolicy rules are shopmesh/topology.yaml read through shopmesh.topology, the
same call graph envoy/ renders its RBAC from: caller principal -> gRPC paths.
"""

from __future__ import annotations

from typing import Any

from shopmesh import topology
from shopmesh.envoy.sidecar import HEALTH_METHODS
from shopmesh.istio.cluster import metadata, principal, service_selector
from shopmesh.istio.end_users import ANY_REQUEST_PRINCIPAL

__all__ = ["authorization_policy", "deny_all", "peer_authentication_strict"]


def peer_authentication_strict() -> dict[str, Any]:
    """Sidecars in the namespace accept mutual TLS only: no plaintext, no unknown peers."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": metadata("default"),
        "spec": {"mtls": {"mode": "STRICT"}},
    }


def deny_all() -> dict[str, Any]:
    """An ALLOW policy with no rules matches nothing: every workload denies by default."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": metadata("deny-all"),
        "spec": {},
    }


def _rule(workloads: list[str], paths: tuple[str, ...], end_user: bool = False) -> dict[str, Any]:
    source: dict[str, Any] = {"principals": [principal(w) for w in workloads]}
    if end_user:
        # ...and a verified end user's token (RequestAuthentication, end_users.py).
        source["requestPrincipals"] = [ANY_REQUEST_PRINCIPAL]
    return {
        "from": [{"source": source}],
        # gRPC is always POST; anything else is not a call of the contract.
        "to": [{"operation": {"methods": ["POST"], "paths": list(paths)}}],
    }


def authorization_policy(service: str) -> dict[str, Any]:
    """One rule per caller: its principal, and exactly the RPCs the topology allows it;
    for a service that acts for end users, only with an end user's valid token."""
    mesh_topology = topology.load()
    end_user = mesh_topology.needs_end_user(service)
    rules = [
        _rule([caller], paths, end_user)
        for caller, paths in sorted(mesh_topology.callers(service).items())
    ]
    # Any workload may ask whether the service is healthy, as envoy/'s sidecar
    # RBAC allows (kubelet probes need no rule: Istio's agent sends them).
    rules.append(_rule(list(mesh_topology.workloads), HEALTH_METHODS))
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": metadata(f"{service}-callers"),
        "spec": {
            "selector": {"matchLabels": service_selector(service)},
            "action": "ALLOW",
            "rules": rules,
        },
    }
