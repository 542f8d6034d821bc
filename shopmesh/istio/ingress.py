"""The edge: Istio's ingress gateway serves REST/JSON and gRPC from frontends.

- Gateway: TLS on 443 (plain HTTP redirects to it).
- VirtualService: only the RPCs topology lets `edge` call, each with its
  contract's timeout and retries, so internal RPCs are not reachable at all.
- EnvoyFilter: Envoy's gRPC-JSON transcoder at the gateway, with the descriptor
  inline (`proto_descriptor_bin`): one self-contained object, no ConfigMap to
  mount into a gateway Deployment that istioctl owns. The gateway is shared with
  other apps, so the filter goes only on the listener of the Gateway's HTTPS
  port and lets requests it cannot map pass on to the routes.
"""

from __future__ import annotations

import base64
from typing import Any

from mesh import contracts
from shopmesh import topology
from shopmesh.envoy.descriptor import transcoder_descriptor_set
from shopmesh.envoy.templates import fill
from shopmesh.istio.cluster import (
    EDGE_WORKLOAD,
    INGRESS_NAMESPACE,
    INGRESS_SELECTOR,
    INGRESS_TARGET_PORTS,
    metadata,
)
from shopmesh.istio.traffic import Target, route, to_service

__all__ = [
    "GATEWAY",
    "gateway",
    "grpc_json_transcoder",
    "rest_services",
    "transcoder_descriptor",
    "virtual_service",
]

GATEWAY = "shop-gateway"
# The Gateway's servers: HTTPS serves the shop, HTTP only redirects to it.
HTTPS_PORT = 443
HTTP_PORT = 80
# The TLS certificate of the public host, a Secret in the gateway's namespace.
TLS_SECRET = "shop-ingress-tls"


def rest_services() -> list[str]:
    """Full names of the services in proto/ with at least one google.api.http rule."""
    return sorted(
        contract.full_name
        for contract in contracts.services().values()
        if any(policy.http is not None for policy in contract.methods.values())
    )


def transcoder_descriptor() -> bytes:
    """The local edge's transcoder descriptor (shopmesh.envoy.descriptor: the
    contracts' files plus the google.rpc error types)."""
    return transcoder_descriptor_set().SerializeToString(deterministic=True)


def gateway() -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": metadata(GATEWAY),
        "spec": {
            "selector": INGRESS_SELECTOR,
            "servers": [
                {
                    "port": {"number": HTTPS_PORT, "name": "https", "protocol": "HTTPS"},
                    # Narrow to the public host name in an overlay.
                    "hosts": ["*"],
                    "tls": {"mode": "SIMPLE", "credentialName": TLS_SECRET},
                },
                {
                    "port": {"number": HTTP_PORT, "name": "http", "protocol": "HTTP"},
                    "hosts": ["*"],
                    "tls": {"httpsRedirect": True},
                },
            ],
        },
    }


def virtual_service(to: Target = to_service) -> dict[str, Any]:
    """Routes of the gateway: every RPC `edge` may call, and nothing else."""
    mesh_topology = topology.load()
    routes = [
        route(contracts.method_policy(path), name=f"{service}.{path.rsplit('/', 1)[1]}", to=to)
        for service in sorted(mesh_topology.services)
        for path in mesh_topology.callers(service).get(EDGE_WORKLOAD, ())
    ]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": metadata("ingress"),
        "spec": {"hosts": ["*"], "gateways": [GATEWAY], "http": routes},
    }


def grpc_json_transcoder() -> dict[str, Any]:
    """REST/JSON <-> gRPC at the gateway, for the services that have HTTP rules.

    The transcoder rewrites a REST request to its gRPC path before routing, so the
    gateway's routes, timeouts and the services' AuthorizationPolicy see gRPC paths.
    """
    # The local edge's transcoder settings (shopmesh/envoy/fragments/edge/transcoder.yaml), so both
    # edges answer REST the same way; the descriptor travels inline instead of as a file.
    transcoder = fill("edge/transcoder", descriptor=None, services=rest_services())
    transcoder["proto_descriptor_bin"] = base64.b64encode(transcoder_descriptor()).decode("ascii")
    # Unlike the local edge, which serves only the shop and answers a path the API
    # does not define with 404 itself: the `istio: ingressgateway` is shared, and
    # its HTTPS listener carries every app's Gateway on that port. Rejecting unknown
    # methods would answer other apps' requests 404 "Could not resolve ... to a
    # method". Unmapped requests pass on untouched; the Gateway and VirtualService
    # decide (the shop's routes match only gRPC paths, so a wrong shop path is the
    # router's 404). Unknown query parameters of a mapped method are still 400.
    transcoder["request_validation_options"]["reject_unknown_method"] = False
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        # EnvoyFilters apply to workloads of their own namespace: the gateway's.
        "metadata": metadata("grpc-json-transcoder", ns=INGRESS_NAMESPACE),
        "spec": {
            "workloadSelector": {"labels": INGRESS_SELECTOR},
            # INSERT_BEFORE is relative to the router, which is always there; an
            # explicit priority keeps the order defined (istioctl analyze IST0151).
            "priority": 10,
            "configPatches": [
                {
                    "applyTo": "HTTP_FILTER",
                    "match": {
                        "context": "GATEWAY",
                        "listener": {
                            # Only the listener of the Gateway's HTTPS server (the
                            # gateway pod's port for it), not every app's listeners;
                            # HTTP on port 80 only redirects to HTTPS.
                            "portNumber": INGRESS_TARGET_PORTS[HTTPS_PORT],
                            "filterChain": {
                                "filter": {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "subFilter": {"name": "envoy.filters.http.router"},
                                }
                            },
                        },
                    },
                    "patch": {
                        "operation": "INSERT_BEFORE",
                        "value": {
                            "name": "envoy.filters.http.grpc_json_transcoder",
                            "typed_config": transcoder,
                        },
                    },
                }
            ],
        },
    }
