"""How the mesh reaches a service: DestinationRule (balancing, pools, ejection, mTLS)
and VirtualService (per-RPC timeouts and retries from the contract).

Timeouts and retry safety are read from proto/ through mesh.contracts, and the
retry rule and conditions are the local sidecars' (envoy/), so both meshes retry
the same calls the same way. Retries happen at exactly one layer per hop: the
sidecar retries what this file allows, and the apps run with SHOPMESH_APP_RETRIES=0.
"""

from __future__ import annotations

from typing import Any

from mesh import contracts
from shopmesh.envoy.common import proxy_may_retry
from shopmesh.envoy.templates import fill
from shopmesh.istio.cluster import GRPC_PORT, host, metadata

__all__ = [
    "Split",
    "destination_rule",
    "duration",
    "retries",
    "route",
    "virtual_service",
]

# Traffic split between the subsets v1 and v2 (percentages), or None for no subsets.
Split = tuple[int, int] | None


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


def _destinations(service: str, split: Split) -> list[dict[str, Any]]:
    destination = {"host": host(service), "port": {"number": GRPC_PORT}}
    if split is None:
        return [{"destination": destination}]
    return [
        {"destination": {**destination, "subset": subset}, "weight": weight}
        for subset, weight in zip(("v1", "v2"), split, strict=True)
    ]


def route(policy: contracts.MethodPolicy, split: Split, name: str) -> dict[str, Any]:
    """One RPC's route: exact gRPC path, the contract's timeout, retries if safe."""
    return {
        "name": name,
        "match": [{"uri": {"exact": policy.path}}],
        # The contract's timeout bounds the whole call, retries included.
        "timeout": duration(policy.timeout),
        "retries": retries(policy),
        "route": _destinations(policy.service, split),
    }


def virtual_service(service: str, split: Split = None) -> dict[str, Any]:
    """Calls inside the mesh to the service, one route per RPC of its contract."""
    contract = contracts.service(service)
    routes = [
        route(policy, split, name=policy.name)
        for policy in sorted(contract.methods.values(), key=lambda p: p.path)
    ]
    # Health checks and reflection by an allowed caller: default deadline, no
    # retries (AuthorizationPolicy still decides who may call them).
    routes.append(
        {
            "name": "other",
            "timeout": duration(contracts.DEFAULT_TIMEOUT_S),
            "retries": {"attempts": 0},
            "route": _destinations(service, split),
        }
    )
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": metadata(service),
        "spec": {"hosts": [host(service)], "http": routes},
    }


def destination_rule(service: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": metadata(service),
        "spec": {
            "host": host(service),
            "trafficPolicy": {
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
            },
        },
    }
