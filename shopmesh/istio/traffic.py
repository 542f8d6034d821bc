"""How the mesh reaches a service: DestinationRule (balancing, pools, ejection, mTLS)
and VirtualService (per-RPC timeouts and retries from the contract).

Timeouts and retry safety are read from proto/ through mesh.contracts, and the
retry rule and conditions are the local sidecars' (envoy/), so both meshes retry
the same calls the same way. Retries happen at exactly one layer per hop: the
sidecar retries what this file allows, and the apps run with SHOPMESH_APP_RETRIES=0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mesh import contracts
from shopmesh.envoy.common import proxy_may_retry
from shopmesh.envoy.templates import fill
from shopmesh.istio.cluster import GRPC_PORT, host, metadata

__all__ = [
    "Target",
    "destination_rule",
    "duration",
    "retries",
    "route",
    "to_service",
    "traffic_policy",
    "virtual_service",
]

# Where a route sends a service's calls: its `route` (or `delegate`) for that service.
Target = Callable[[str], dict[str, Any]]


def duration(seconds: float) -> str:
    """A duration both protobuf JSON and Go accept, e.g. "0.5s", "10s"."""
    return f"{round(seconds * 1000) / 1000:g}s"


def retries(policy: contracts.MethodPolicy) -> dict[str, Any]:
    """The local sidecars' retry policy (shopmesh/envoy/fragments/retry_policy.yaml) in
    Istio's terms, for RPCs a proxy may repeat (shopmesh.envoy.common.proxy_may_retry);
    else none."""
    if not proxy_may_retry(policy):
        return {"attempts": 0}  # also overrides Istio's default of 2 retries
    envoy = fill("retry_policy")
    return {"attempts": envoy["num_retries"], "retryOn": envoy["retry_on"]}


def to_service(service: str) -> dict[str, Any]:
    """Straight to the service's pods, through its Kubernetes Service."""
    return {"route": [{"destination": {"host": host(service), "port": {"number": GRPC_PORT}}}]}


def route(policy: contracts.MethodPolicy, name: str, to: Target = to_service) -> dict[str, Any]:
    """One RPC's route: exact gRPC path, the contract's timeout, retries if safe."""
    return {
        "name": name,
        "match": [{"uri": {"exact": policy.path}}],
        # The contract's timeout bounds the whole call, retries included.
        "timeout": duration(policy.timeout),
        "retries": retries(policy),
        **to(policy.service),
    }


def virtual_service(
    service: str, *, name: str | None = None, to: Target = to_service
) -> dict[str, Any]:
    """Calls inside the mesh to the service, one route per RPC of its contract."""
    contract = contracts.service(service)
    routes = [
        route(policy, name=policy.name, to=to)
        for policy in sorted(contract.methods.values(), key=lambda p: p.path)
    ]
    # Health checks and reflection by an allowed caller: default deadline, no
    # retries (AuthorizationPolicy still decides who may call them).
    routes.append(
        {
            "name": "other",
            "timeout": duration(contracts.DEFAULT_TIMEOUT_S),
            "retries": {"attempts": 0},
            **to(service),
        }
    )
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": metadata(name or service),
        "spec": {"hosts": [host(service)], "http": routes},
    }


def traffic_policy() -> dict[str, Any]:
    """How callers' sidecars treat a service's endpoints: balancing, pools, ejection, mTLS."""
    return {
        # Per request, to the endpoint with the fewest requests in flight.
        "loadBalancer": {"simple": "LEAST_REQUEST"},
        "connectionPool": {
            "tcp": {"maxConnections": 100, "connectTimeout": "1s"},
            "http": {
                "http2MaxRequests": 1000,
                # Recycle long-lived HTTP/2 connections now and then.
                "maxRequestsPerConnection": 1000,
                # A retry budget: retries in flight to the whole service are
                # capped, so an outage cannot multiply the load on it.
                "maxRetries": 20,
            },
        },
        # Envoy maps grpc-status to HTTP for this: UNAVAILABLE, INTERNAL,
        # UNKNOWN and DEADLINE_EXCEEDED count, client errors do not.
        "outlierDetection": {
            "consecutive5xxErrors": 5,
            "interval": "10s",
            "baseEjectionTime": "30s",
            "maxEjectionPercent": 50,
        },
        "tls": {"mode": "ISTIO_MUTUAL"},
    }


def destination_rule(service: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": metadata(service),
        "spec": {"host": host(service), "trafficPolicy": traffic_policy()},
    }
