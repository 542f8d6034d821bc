"""Pieces the edge and the sidecars share: bootstrap, upstream clusters, method routes."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf import message_factory

from mesh import contracts
from shopmesh.envoy import discovery, routing
from shopmesh.envoy.templates import fill
from shopmesh.identity.certs import WorkloadCert
from shopmesh.topology import Topology

__all__ = [
    "HealthChecking",
    "MeshFiles",
    "access_log",
    "bootstrap",
    "duration",
    "method_route",
    "proxy_may_retry",
    "socket_address",
    "upstream_clusters",
]

LOOPBACK = "127.0.0.1"
# Upper bounds (ms) of the buckets of each cluster's upstream_rq_time histogram.
LATENCY_BUCKETS_MS = (
    1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 250, 300, 400, 500,
    600, 800, 1000, 1500, 2000, 3000, 5000, 10000, 30000, 60000,
)  # fmt: skip


@dataclass(frozen=True)
class MeshFiles:
    """Files every proxy of one mesh shares."""

    ca: pathlib.Path  # the mesh CA certificate
    eds_dir: pathlib.Path  # discovery files, see shopmesh/envoy/discovery.py
    log_dir: pathlib.Path  # health check event logs
    jwks: pathlib.Path  # public keys of the end users' token issuer (shopmesh/identity/tokens.py)
    runtime_dir: pathlib.Path  # the routing weights' runtime tree, see shopmesh/envoy/routing.py


@dataclass(frozen=True)
class HealthChecking:
    """How often callers check replicas: a replica that stops answering is marked
    unhealthy after about interval * unhealthy_threshold (0.5 s by default)."""

    interval: float = 0.25
    unhealthy_threshold: int = 2


def duration(seconds: float) -> str:
    """A protobuf Duration in its JSON/YAML spelling."""
    return f"{seconds:.3f}s"


def socket_address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def bootstrap(
    node: str, workload: str, listeners: list, clusters: list, files: MeshFiles | None = None
) -> dict[str, Any]:
    """An Envoy bootstrap: static listeners and clusters, admin on a loopback port
    the OS picks (the runner reads it back from --admin-address-path). Without the
    mesh's files (the benchmark's floor Envoys) there is no routing by version."""
    routing_layers = [] if files is None else [routing.disk_layer(files.runtime_dir)]
    return {
        "node": {"id": node, "cluster": workload},
        "admin": {"address": socket_address(LOOPBACK, 0)},
        "static_resources": {"listeners": listeners, "clusters": clusters},
        # Histograms (upstream_rq_time) are merged when the admin API is asked rather
        # than every 5 s: a rollout reads each version's latency when it judges it,
        # in buckets fine enough to tell a p99 of 400 ms from one of 500.
        "stats_flush_on_admin": True,
        "stats_config": {
            "histogram_bucket_settings": [
                {"match": {"suffix": "upstream_rq_time"}, "buckets": list(LATENCY_BUCKETS_MS)}
            ]
        },
        "layered_runtime": {
            "layers": [
                # The split of each service's calls between its versions (routing.py).
                *routing_layers,
                # An admin layer lets operators and benchmarks flip runtime keys, e.g.
                # `curl -X POST <admin>/runtime_modify?checkout_rate_limit.enforced=0`.
                {"name": "admin", "admin_layer": {}},
            ]
        },
    }


def access_log(proxy: str) -> dict[str, Any]:
    return fill("access_log", proxy=proxy)


def _requires_request_id(policy: contracts.MethodPolicy) -> bool:
    field = policy.descriptor.input_type.fields_by_name.get(contracts.REQUEST_ID_FIELD)
    if field is None:
        return False
    behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return field_behavior_pb2.REQUIRED in behaviors


def proxy_may_retry(policy: contracts.MethodPolicy) -> bool:
    """Whether a proxy may repeat a call of this method after a retryable failure.

    A proxy cannot look into the request, and for these contracts needs not: a
    method whose retry safety rests on request_id declares that field REQUIRED
    (google.api.field_behavior), and the server rejects a call without one
    (INVALID_ARGUMENT, never retried) before doing anything. Every call of such
    a method that fails in a retryable way therefore carried a request_id, and
    is judged as one that does. Without that guarantee only the method's own
    marking counts.
    """
    probe = message_factory.GetMessageClass(policy.descriptor.input_type)()
    if _requires_request_id(policy):
        setattr(probe, contracts.REQUEST_ID_FIELD, "carried")
    return policy.retry_safe(probe)


def method_route(
    policy: contracts.MethodPolicy, service: str, per_filter_config: dict | None = None
) -> dict[str, Any]:
    """The route of one method to `service`'s replicas, split between its versions."""
    return fill(
        "method_route",
        path=policy.path,
        clusters=routing.weighted_clusters(service),
        timeout=duration(policy.timeout),
        retry_policy=fill("retry_policy") if proxy_may_retry(policy) else None,
        per_filter_config=per_filter_config,
    )


def upstream_clusters(
    service: str,
    topology: Topology,
    caller: WorkloadCert,
    files: MeshFiles,
    health: HealthChecking,
    proxy: str,
) -> list[dict[str, Any]]:
    """The clusters of `service`'s replicas as the proxy named `proxy` reaches them:
    the stable version's and a new version's (routing.py), each from its own
    discovery file, alike in everything else."""
    return [
        fill(
            "upstream_cluster",
            name=cluster,
            eds_file=str(discovery.eds_file(files.eds_dir, cluster)),
            eds_dir=str(files.eds_dir),
            sni=service,
            cert=str(caller.cert),
            key=str(caller.key),
            ca=str(files.ca),
            server_identity=topology.spiffe_id(service),
            health_interval=duration(health.interval),
            unhealthy_threshold=health.unhealthy_threshold,
            health_log=str(files.log_dir / f"{proxy}.health.log"),
            grpc_service=contracts.service(service).full_name,
        )
        for cluster in routing.clusters(service)
    ]
