"""Where shopmesh lives in a Kubernetes cluster: namespace, hosts, ports, identities, scale.

One place for the facts every manifest shares with the services' runtime (ports,
env, drain), with Istio (principals, the ingress gateway) and with the database
(how many pods of a service can be connected at once).
"""

from __future__ import annotations

from typing import Any

from shopmesh import topology

__all__ = [
    "CLUSTER_DOMAIN",
    "DRAIN_SECONDS",
    "EDGE_PRINCIPAL",
    "EDGE_WORKLOAD",
    "GRPC_PORT",
    "IMAGE",
    "INGRESS_NAMESPACE",
    "INGRESS_SELECTOR",
    "INGRESS_TARGET_PORTS",
    "MAX_REPLICAS",
    "MAX_SURGE",
    "METRICS_PORT",
    "PART_OF",
    "PROMETHEUS_URL",
    "SERVICE_LABEL",
    "host",
    "labels",
    "metadata",
    "namespace",
    "pods_at_most",
    "principal",
    "replicas",
    "service_selector",
]

# Shared with services/ (SHOPMESH_LISTEN / SHOPMESH_METRICS_LISTEN defaults).
GRPC_PORT = 50051
METRICS_PORT = 9464
# The server's SIGTERM grace (SHOPMESH_DRAIN_SECONDS); pod timings are built on it.
DRAIN_SECONDS = 10
# One image for all four services; the Deployment picks the service by argument.
IMAGE = "shopmesh:0.1.0"

CLUSTER_DOMAIN = "cluster.local"
# The ingress gateway `istioctl install` creates (default profile).
INGRESS_NAMESPACE = "istio-system"
INGRESS_SELECTOR = {"istio": "ingressgateway"}
# Its Service maps port 80 to the pod's 8080 and 443 to 8443 (the gateway runs
# non-root). A Gateway server's port number is the Service port; the Envoy
# listener it becomes (0.0.0.0_8443) binds the target port, and that is what an
# EnvoyFilter's listener.portNumber matches in the GATEWAY context. A gateway
# installed with another mapping needs this changed (and istio/ regenerated).
INGRESS_TARGET_PORTS = {80: 8080, 443: 8443}
# topology's `edge` workload is the ingress gateway, so it carries the gateway's identity.
EDGE_WORKLOAD = "edge"
EDGE_PRINCIPAL = f"{CLUSTER_DOMAIN}/ns/{INGRESS_NAMESPACE}/sa/istio-ingressgateway-service-account"
PART_OF = {"app.kubernetes.io/part-of": "shopmesh"}
# Every pod of a service carries its name here, whichever Deployment runs it.
# Flagger's `<service>-primary` copies the pods' labels but rewrites `app` (its
# selector label), so whatever must reach every pod of a service (authorization,
# end users' tokens, database access) selects this label, never `app`.
SERVICE_LABEL = "app.kubernetes.io/name"
# Where Flagger's metric checks query: the Prometheus that reads the PodMonitor
# (the Prometheus Operator keeps `prometheus-operated` beside each Prometheus it
# runs; here one in namespace `monitoring`). Another location: change it and
# regenerate, or patch the MetricTemplates' `provider.address` in an overlay.
PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"

# Kubernetes needs at least two pods for a rollout or a node drain to keep serving.
MIN_REPLICAS = 2
# The autoscaler's ceiling per service: the pods are stateless, so more of them is
# more capacity, up to what the database's connection budget is sized for.
MAX_REPLICAS = 6
# A rolling update starts one new pod before it stops an old one.
MAX_SURGE = 1


def namespace() -> str:
    return topology.load().namespace


def replicas(service: str) -> int:
    """The pods a service's Deployment starts with (and the autoscaler's floor)."""
    return max(MIN_REPLICAS, topology.load().replicas[service])


def pods_at_most(service: str) -> int:
    """The most pods of a service that can run at once. Under Flagger
    (overlays/progressive-delivery) a release runs beside the primary: the primary
    and the release (the target Deployment, scaled by its own autoscaler as its
    share of traffic grows) each up to the autoscaler's ceiling plus a rollout's surge."""
    return 2 * (MAX_REPLICAS + MAX_SURGE)


def host(service: str) -> str:
    """The service's fully qualified Kubernetes Service name, as Istio hosts spell it."""
    return f"{service}.{namespace()}.svc.{CLUSTER_DOMAIN}"


def principal(workload: str) -> str:
    """The identity a workload's requests carry, as AuthorizationPolicy spells it."""
    if workload == EDGE_WORKLOAD:
        return EDGE_PRINCIPAL
    return topology.load().principal(workload)


def labels(service: str, version: str | None = None) -> dict[str, str]:
    """A Deployment's own pods (its selector): `app`, and `version`. Flagger's copy of a
    Deployment selects `app: <service>-primary` instead."""
    found = {"app": service}
    if version:
        found["version"] = version
    return found


def service_selector(service: str) -> dict[str, str]:
    """Every pod of the service, Flagger's primary and the release under analysis alike."""
    return {SERVICE_LABEL: service}


def metadata(name: str, *, ns: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": ns or namespace(), **extra}
