"""Kubernetes objects that run one service: identity, pods, Service, scaling.

The pods follow the contract shared with services/: `python -m services <name>`,
gRPC on GRPC_PORT with the standard health service, /metrics on METRICS_PORT,
SIGTERM drain of DRAIN_SECONDS. They are stateless: their data is in PostgreSQL
(shopmesh.istio.postgres), so any node may run them and the autoscaler's pods are
added capacity.
"""

from __future__ import annotations

from typing import Any

from mesh import contracts
from services.runtime.health import LIVENESS
from shopmesh import topology
from shopmesh.istio import postgres
from shopmesh.istio.cluster import (
    DRAIN_SECONDS,
    GRPC_PORT,
    IMAGE,
    MAX_REPLICAS,
    MAX_SURGE,
    METRICS_PORT,
    PART_OF,
    labels,
    metadata,
    replicas,
    service_selector,
)

__all__ = [
    "deployment",
    "horizontal_pod_autoscaler",
    "kubernetes_service",
    "pod_disruption_budget",
    "service_account",
]

# The pods' `version` label, part of the Deployments' (immutable) selectors.
VERSION = "v1"
# The image's non-root user (Dockerfile: USER 10001).
RUN_AS = 10001
# Let the endpoint removal reach every sidecar before the server stops accepting.
PRE_STOP_SECONDS = 5
# SIGKILL only after pre-stop plus the server's own drain, with room to spare.
TERMINATION_GRACE_SECONDS = 2 * (PRE_STOP_SECONDS + DRAIN_SECONDS)
# The sidecar must outlive the app's drain: order still calls upstreams meanwhile.
PROXY_DRAIN_SECONDS = PRE_STOP_SECONDS + DRAIN_SECONDS + 2


def service_account(workload: str) -> dict[str, Any]:
    """The workload's identity: Istio issues spiffe://cluster.local/ns/shop/sa/<workload>."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(workload, labels={**labels(workload), **PART_OF}),
        # The pods never call the Kubernetes API; the sidecar mounts its own token.
        "automountServiceAccountToken": False,
    }


def _env(service: str) -> list[dict[str, Any]]:
    env = {
        "SHOPMESH_LISTEN": f"0.0.0.0:{GRPC_PORT}",
        "SHOPMESH_METRICS_LISTEN": f"0.0.0.0:{METRICS_PORT}",
        "SHOPMESH_DRAIN_SECONDS": str(DRAIN_SECONDS),
        "SHOPMESH_LOG_LEVEL": "INFO",
    }
    upstreams = topology.load().upstreams(service)
    for upstream in upstreams:
        env[f"SHOPMESH_UPSTREAM_{upstream.upper()}"] = f"{upstream}:{GRPC_PORT}"
    if upstreams:
        # The sidecar retries these hops (VirtualService); one retry layer per hop.
        env["SHOPMESH_APP_RETRIES"] = "0"
    plain = [{"name": name, "value": value} for name, value in env.items()]
    return plain + postgres.connection_env(service)


def _probe(health_service: str | None, period: int, failures: int) -> dict[str, Any]:
    # Native gRPC probes on grpc.health.v1; Istio rewrites them to go through its
    # agent, so they keep working under STRICT mTLS and are not subject to AuthZ.
    grpc: dict[str, Any] = {"port": GRPC_PORT}
    if health_service:
        grpc["service"] = health_service
    return {"grpc": grpc, "periodSeconds": period, "failureThreshold": failures}


def _spread(service: str) -> list[dict[str, Any]]:
    """One node or zone going away takes at most its share of the service's pods.

    Nodes: a hard limit (a pod waits rather than doubling up while another node has
    fewer); cordoned and tainted nodes do not count, so a drain is not blocked by
    them. Zones: best effort, clusters without zone labels still schedule. Counted
    per ReplicaSet (pod-template-hash), so a rollout's old pods do not skew the new.
    """
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": labels(service)},
            "matchLabelKeys": ["pod-template-hash"],
            "nodeTaintsPolicy": "Honor",
        }
        for key, when in (
            ("kubernetes.io/hostname", "DoNotSchedule"),
            ("topology.kubernetes.io/zone", "ScheduleAnyway"),
        )
    ]


def _container(service: str) -> dict[str, Any]:
    health = contracts.service(service).full_name
    _, ca_mount = postgres.connection_volume()
    return {
        "name": service,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": [service],
        "ports": [
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
            {"name": "http-metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        "env": _env(service),
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        # Startup covers migrating and seeding the database; readiness follows the
        # service's own status (NOT_SERVING while draining or when its store fails).
        # Liveness asks for the runtime's LIVENESS name, SERVING while the process
        # answers, whatever its store does: a restart does not cure a database, and
        # the overall status "" goes NOT_SERVING with the service's when it fails.
        "startupProbe": _probe(health, period=2, failures=30),
        "readinessProbe": _probe(health, period=5, failures=2),
        "livenessProbe": _probe(LIVENESS, period=10, failures=3),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, ca_mount],
    }


def deployment(service: str) -> dict[str, Any]:
    """The service's pods. Under Flagger this is the release's Deployment (its target),
    and Flagger runs a copy of it, `<service>-primary`, for the version in service."""
    selector = labels(service, VERSION)
    ca_volume, _ = postgres.connection_volume()
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(service, labels={**selector, **PART_OF}),
        "spec": {
            "replicas": replicas(service),
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector},
            # Never below the current capacity while a new pod starts.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": MAX_SURGE},
            },
            "template": {
                "metadata": {
                    # The selector's labels, plus the ones every pod of the service
                    # keeps under Flagger (service_selector) and the shop's own.
                    "labels": {**selector, **service_selector(service), **PART_OF},
                    "annotations": {
                        # Istio merges these app metrics into the sidecar's scrape endpoint.
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(METRICS_PORT),
                        "prometheus.io/path": "/metrics",
                        "sidecar.istio.io/rewriteAppHTTPProbers": "true",
                        "proxy.istio.io/config": (
                            "holdApplicationUntilProxyStarts: true\n"
                            f"terminationDrainDuration: {PROXY_DRAIN_SECONDS}s\n"
                        ),
                    },
                },
                "spec": {
                    "serviceAccountName": service,
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS,
                        "runAsGroup": RUN_AS,
                        "fsGroup": RUN_AS,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "topologySpreadConstraints": _spread(service),
                    "containers": [_container(service)],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}, ca_volume],
                },
            },
        },
    }


def kubernetes_service(service: str) -> dict[str, Any]:
    """The Service: port named grpc with appProtocol grpc, so Istio balances per request."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(service, labels={**labels(service), **PART_OF}),
        "spec": {
            # The Deployment's pods. overlays/progressive-delivery leaves this Service
            # to Flagger, which points it at its primary.
            "selector": labels(service),
            "ports": [
                {
                    "name": "grpc",
                    "port": GRPC_PORT,
                    "targetPort": "grpc",
                    "protocol": "TCP",
                    "appProtocol": "grpc",
                }
            ],
        },
    }


def horizontal_pod_autoscaler(service: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(service, labels={**labels(service), **PART_OF}),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service},
            "minReplicas": replicas(service),
            "maxReplicas": MAX_REPLICAS,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
            # Scale down slowly: a short lull should not drop warm caches.
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


def pod_disruption_budget(service: str, deployment: str | None = None) -> dict[str, Any]:
    """Voluntary evictions (node drains, upgrades) always leave one pod of the
    Deployment serving: one budget per Deployment (Flagger's primary gets its own)."""
    name = deployment or service
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(name, labels={**labels(service), **PART_OF}),
        "spec": {"minAvailable": 1, "selector": {"matchLabels": labels(name)}},
    }
