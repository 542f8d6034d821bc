"""Progressive delivery on Kubernetes: a Flagger Canary per service, from the rollout policy.

shopmesh/rollout.yaml is the one policy (steps, analysis window, thresholds) that
the local controller (`shopmesh rollout`) and these manifests are derived from.
overlays/progressive-delivery adds to the base, per service:

- a Canary (Istio provider) on the service's Deployment and autoscaler. Flagger
  copies the Deployment to `<service>-primary`, which serves; a change of the
  Deployment's pod template (a new image) is a release: Flagger starts its pods
  beside the primary and moves the policy's steps of traffic to them, one
  analysis window each, as long as every metric check passes. The first failed
  check (`threshold: 1`) sends all traffic back to the primary and scales the
  release to zero; after the last step the release is copied to the primary.
- the checks: MetricTemplates for the policy's three numbers, queried from the
  release's own sidecars (`reporter="destination"`, its Deployment's name). Flagger's
  builtin request-success-rate counts HTTP 5xx, and a gRPC error is an HTTP 200
  whose status is in the trailers: it would pass a release that fails every call.
  The templates count gRPC statuses (grpc_response_status) instead, the ones
  that are the server's fault (shopmesh.rollout.FAILED_CALL_CODES, what the local
  rollout counts too; a caller's bad request is no fault of the release).
  Flagger has no minimum call count, so it is a check of its own, first: a
  window with fewer calls judges nothing and fails.
- routes by delegation: Flagger owns the VirtualService `<service>` (the weights
  between `<service>-primary` and `<service>-canary`) and the DestinationRules of
  those hosts, and its VirtualService has one route. The contracts' per-RPC
  timeouts and retries stay in the shop's own VirtualServices, whose routes
  delegate to Flagger's (Istio keeps the root route's timeout and retries where
  the delegate sets none): `<service>-rpcs` for the mesh, `ingress` for the gateway.
"""

from __future__ import annotations

from typing import Any

from shopmesh.istio import ingress, traffic, workloads
from shopmesh.istio.cluster import (
    GRPC_PORT,
    PART_OF,
    PROMETHEUS_URL,
    metadata,
    namespace,
    service_selector,
)
from shopmesh.istio.monitoring import SCRAPE_INTERVAL_SECONDS
from shopmesh.rollout import FAILED_CALL_CODES, Policy

__all__ = [
    "API_VERSION",
    "QUERIES",
    "canary",
    "canary_traffic_policy",
    "handed_to_flagger",
    "ingress_routes",
    "interval",
    "metric_templates",
    "primary",
    "primary_pod_disruption_budget",
    "release_deployment",
    "rpc_routes",
    "step_weights",
    "to_release",
]

API_VERSION = "flagger.app/v1beta1"
# The release's own calls, as its sidecars report them: the Deployment Flagger
# analyses is `{{ target }}` (the primary's pods report as `<target>-primary`).
_RELEASE_CALLS = (
    '{reporter="destination", destination_workload_namespace="{{ namespace }}", '
    'destination_workload="{{ target }}"'
)
_WINDOW = "[{{ interval }}]"
# Of those, the ones that failed as the server's fault: gRPC status numbers as Istio
# labels them. UNAVAILABLE among them is also what the release's sidecar answers
# for a pod whose app crashed or refuses connections.
_FAILED_STATUSES = "|".join(str(n) for n in sorted(code.value[0] for code in FAILED_CALL_CODES))
_FAILED = f', grpc_response_status=~"{_FAILED_STATUSES}"'


def _calls(metric: str = "istio_requests_total", extra: str = "") -> str:
    return f"{metric}{_RELEASE_CALLS}{extra}}}{_WINDOW}"


# Each query's value is the number the policy bounds (Flagger fails a check whose
# value is below thresholdRange.min or above .max). A window without a call of
# the release has no value at all, which Flagger counts as a failed check too.
# One selector a line, so the rendered YAML keeps them as written.
QUERIES = {
    # Calls the release answered in the window (policy: min_requests).
    "requests": f"sum(increase(\n  {_calls()}\n))\n",
    # Their share that failed as the server's fault, in percent (policy:
    # max_error_rate; percent because Flagger's events print two decimals); no such
    # failure at all is 0, not "no value".
    "error-percent": (
        "100 * (\n"
        f"  sum(increase({_calls(extra=_FAILED)}))\n"
        "  or vector(0)\n"
        f")\n/ sum(increase({_calls()}))\n"
    ),
    # The 99th percentile of their duration in ms as the sidecar measures it, like
    # Flagger's builtin request-duration (policy: max_p99_ms).
    "latency-p99": (
        "histogram_quantile(0.99, sum by (le) (rate(\n"
        f"  {_calls('istio_request_duration_milliseconds_bucket')}\n"
        ")))\n"
    ),
}


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _thresholds(policy: Policy) -> dict[str, dict[str, float | int]]:
    """thresholdRange per check. Flagger's bounds are inclusive and the policy's
    strict (a p99 of exactly 500 ms fails locally, passes here): the two disagree
    only on a value exactly at the bound."""
    return {
        "requests": {"min": policy.min_requests},
        "error-percent": {"max": _number(round(100 * policy.max_error_rate, 12))},
        "latency-p99": {"max": _number(policy.max_p99_ms)},
    }


def interval(policy: Policy) -> str:
    """The analysis window as Flagger's interval (and the queries' range): whole seconds."""
    seconds = policy.window_seconds
    if not float(seconds).is_integer():
        raise ValueError(f"analysis.window_seconds {seconds}: Flagger needs whole seconds")
    if seconds < 2 * SCRAPE_INTERVAL_SECONDS:
        raise ValueError(
            f"analysis.window_seconds {seconds}: a window must hold two scrapes "
            f"({SCRAPE_INTERVAL_SECONDS} s apart) for rate() to see any call"
        )
    return f"{int(seconds)}s"


def step_weights(policy: Policy) -> list[int]:
    """The policy's steps before 100 %: Flagger's last step is its promotion, which
    copies the release to the primary and sends all traffic there."""
    return list(policy.steps_percent[:-1])


def metric_templates() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": API_VERSION,
            "kind": "MetricTemplate",
            "metadata": metadata(name, labels=dict(PART_OF)),
            "spec": {"provider": {"type": "prometheus", "address": PROMETHEUS_URL}, "query": query},
        }
        for name, query in QUERIES.items()
    ]


def canary_traffic_policy() -> dict[str, Any]:
    """The DestinationRule's policy for Flagger's DestinationRules (primary and canary
    hosts). Without connectionPool.tcp: the Canary CRD has no such field (its schema
    rejects it, the API server would drop it), so those hosts get Istio's defaults
    there (istio/README.md: meshConfig.connectTimeout)."""
    policy = traffic.traffic_policy()
    pool = {k: v for k, v in policy["connectionPool"].items() if k != "tcp"}
    return {**policy, "connectionPool": pool}


def canary(service: str, policy: Policy) -> dict[str, Any]:
    window = interval(policy)
    return {
        "apiVersion": API_VERSION,
        "kind": "Canary",
        "metadata": metadata(service, labels={**service_selector(service), **PART_OF}),
        "spec": {
            "provider": "istio",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service},
            # Flagger runs a copy of it for the primary, and scales the release by it.
            "autoscalerRef": {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": service,
            },
            # Deleting the Canary gives the Deployment its pods back before Flagger's
            # objects go (leaving Flagger: istio/README.md).
            "revertOnDeletion": True,
            "service": {
                "name": service,
                "port": GRPC_PORT,
                "targetPort": "grpc",
                "portName": "grpc",
                "appProtocol": "grpc",
                # No hosts or gateways: the shop's VirtualServices delegate to this one.
                "delegation": True,
                "trafficPolicy": canary_traffic_policy(),
            },
            "analysis": {
                "interval": window,
                # Roll back on the first failed window.
                "threshold": 1,
                "stepWeights": step_weights(policy),
                "metrics": [
                    {
                        "name": name,
                        "templateRef": {"name": name, "namespace": namespace()},
                        "interval": window,
                        "thresholdRange": bounds,
                    }
                    for name, bounds in _thresholds(policy).items()
                ],
            },
        },
    }


def to_release(service: str) -> dict[str, Any]:
    """A route's calls go where Flagger's VirtualService for the service sends them."""
    return {"delegate": {"name": service, "namespace": namespace()}}


def rpc_routes(service: str) -> dict[str, Any]:
    """The mesh's per-RPC routes to the service, delegating to Flagger's weights."""
    return traffic.virtual_service(service, name=f"{service}-rpcs", to=to_release)


def ingress_routes() -> dict[str, Any]:
    """The gateway's routes, delegating too: a release gets its share of frontends' calls."""
    return ingress.virtual_service(to=to_release)


def primary(service: str) -> str:
    """The Deployment Flagger runs the version in service as."""
    return f"{service}-primary"


def primary_pod_disruption_budget(service: str) -> dict[str, Any]:
    return workloads.pod_disruption_budget(service, primary(service))


def handed_to_flagger(service: str) -> list[dict[str, Any]]:
    """Patches deleting the base's objects Flagger makes itself (the Service points at
    the primary, the VirtualService holds the weights) or makes unused (the
    DestinationRule: calls go to the primary's and canary's hosts)."""
    return [
        {"$patch": "delete", "apiVersion": api, "kind": kind, "metadata": metadata(service)}
        for api, kind in (
            ("v1", "Service"),
            ("networking.istio.io/v1", "VirtualService"),
            ("networking.istio.io/v1", "DestinationRule"),
        )
    ]


def release_deployment(service: str) -> dict[str, Any]:
    """A patch leaving the Deployment's replicas to Flagger (zero between releases)
    and its autoscaler: re-applying the overlay must not start idle release pods."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(service),
        "spec": {"replicas": None},
    }
