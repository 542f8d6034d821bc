"""The edge: Istio's ingress gateway serves REST/JSON and gRPC from frontends.

- Gateway: TLS on 443 (plain HTTP redirects to it).
- VirtualService: only the RPCs topology lets `edge` call, each with its
  contract's timeout and retries, so internal RPCs are not reachable at all.
- EnvoyFilter: Envoy's gRPC-JSON transcoder at the gateway, with the descriptor
  inline (`proto_descriptor_bin`): one self-contained object, no ConfigMap to
  mount into a gateway Deployment that istioctl owns.
"""

from __future__ import annotations

import base64
import pathlib
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor
from google.rpc import error_details_pb2, status_pb2

import mesh
from mesh import contracts, topology
from mesh.istio.cluster import EDGE_WORKLOAD, INGRESS_NAMESPACE, INGRESS_SELECTOR, metadata
from mesh.istio.traffic import Split, route

__all__ = [
    "DESCRIPTOR_SET",
    "GATEWAY",
    "gateway",
    "grpc_json_transcoder",
    "rest_services",
    "transcoder_descriptor",
    "virtual_service",
]

GATEWAY = "shop-gateway"
# What `buf build` writes from proto/ (see tools/codegen.py).
DESCRIPTOR_SET = pathlib.Path(mesh.__file__).resolve().parent.parent / "gen/descriptor/shop.binpb"
# The TLS certificate of the public host, a Secret in the gateway's namespace.
TLS_SECRET = "shop-ingress-tls"
# Types the services put in google.rpc.Status details; the transcoder needs their
# descriptors to turn an error into a JSON body for REST clients.
ERROR_TYPES: tuple[FileDescriptor, ...] = (status_pb2.DESCRIPTOR, error_details_pb2.DESCRIPTOR)


def rest_services() -> list[str]:
    """Full names of the services in proto/ with at least one google.api.http rule."""
    return sorted(
        contract.full_name
        for contract in contracts.services().values()
        if any(policy.http is not None for policy in contract.methods.values())
    )


def _add_with_dependencies(
    file: FileDescriptor, files: list[descriptor_pb2.FileDescriptorProto]
) -> None:
    if any(known.name == file.name for known in files):
        return
    for dependency in file.dependencies:
        _add_with_dependencies(dependency, files)
    proto = descriptor_pb2.FileDescriptorProto()
    file.CopyToProto(proto)
    files.append(proto)


def transcoder_descriptor() -> bytes:
    """proto/'s descriptor set without comments, plus the error detail types."""
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    for file in descriptor_set.file:
        # Comments are for people; they would triple the size of the object.
        file.ClearField("source_code_info")
    files = list(descriptor_set.file)
    for file in ERROR_TYPES:
        _add_with_dependencies(file, files)
    return descriptor_pb2.FileDescriptorSet(file=files).SerializeToString(deterministic=True)


def gateway() -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": metadata(GATEWAY),
        "spec": {
            "selector": INGRESS_SELECTOR,
            "servers": [
                {
                    "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                    # Narrow to the public host name in an overlay.
                    "hosts": ["*"],
                    "tls": {"mode": "SIMPLE", "credentialName": TLS_SECRET},
                },
                {
                    "port": {"number": 80, "name": "http", "protocol": "HTTP"},
                    "hosts": ["*"],
                    "tls": {"httpsRedirect": True},
                },
            ],
        },
    }


def virtual_service(split: Split = None) -> dict[str, Any]:
    """Routes of the gateway: every RPC `edge` may call, and nothing else."""
    mesh_topology = topology.load()
    routes = [
        route(contracts.method_policy(path), split, name=f"{service}.{path.rsplit('/', 1)[1]}")
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
    transcoder = {
        "@type": "type.googleapis.com/"
        "envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
        "proto_descriptor_bin": base64.b64encode(transcoder_descriptor()).decode("ascii"),
        "services": rest_services(),
        "print_options": {"always_print_primitive_fields": True},
        # Errors reach REST clients as a JSON google.rpc.Status, details included.
        "convert_grpc_status": True,
    }
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        # EnvoyFilters apply to workloads of their own namespace: the gateway's.
        "metadata": metadata("grpc-json-transcoder", ns=INGRESS_NAMESPACE),
        "spec": {
            "workloadSelector": {"labels": INGRESS_SELECTOR},
            "configPatches": [
                {
                    "applyTo": "HTTP_FILTER",
                    "match": {
                        "context": "GATEWAY",
                        "listener": {
                            "filterChain": {
                                "filter": {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "subFilter": {"name": "envoy.filters.http.router"},
                                }
                            }
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
