"""Rendered istio/ against shopmesh/rollout.yaml: Flagger's Canaries and their checks.

Read, like the other checks, as the overlay runs once Flagger has initialised its
Canaries (flagger_view.as_running). Each rule in its own terms, from the rendered
YAML and the policy file, not from the renderer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mesh import contracts
from shopmesh import rollout
from shopmesh.rollout import Policy

from .flagger_view import resolve_host
from .istio_consistency import autoscalers, find, host_services, pod_labels, selects, service_of

__all__ = ["CHECKS", "RELEASE_CALLS", "canary_problems"]

Documents = list[dict[str, Any]]


def _seconds_of(duration: str) -> float:
    """A Go duration of whole minutes or seconds, as Flagger's intervals are written."""
    units = {"s": 1, "m": 60}
    return float(duration[:-1]) * units[duration[-1]] if duration[-1:] in units else -1.0


def _status_numbers(query: str) -> set[int] | None:
    """The gRPC status numbers a query counts (grpc_response_status=~"a|b"), if any."""
    found = re.search(r'grpc_response_status=~"([0-9|]+)"', query)
    return {int(n) for n in found.group(1).split("|")} if found else None


# The release's own calls: what its sidecars report, by its Deployment's name.
RELEASE_CALLS = (
    'reporter="destination"',
    'destination_workload_namespace="{{ namespace }}"',
    'destination_workload="{{ target }}"',
)


def _template_problems(documents: Documents, policy: Policy) -> Iterator[str]:
    """The checks' queries judge the release by its own calls, errors are the statuses
    the local rollout counts too (the server's faults), and each window holds two
    scrapes at least."""
    templates = {t["metadata"]["name"]: t for t in find(documents, "MetricTemplate")}
    failed = {code.value[0] for code in rollout.FAILED_CALL_CODES}
    for name, template in templates.items():
        query = template["spec"]["query"]
        if template["spec"]["provider"]["type"] != "prometheus":
            yield f"MetricTemplate {name}: not a Prometheus query"
        missing = [part for part in RELEASE_CALLS if part not in query]
        if missing:
            yield f"MetricTemplate {name}: not the release's own calls (no {missing})"
        if "response_code" in query:
            yield f"MetricTemplate {name}: counts HTTP codes; gRPC errors are HTTP 200"
    errors = templates.get("error-percent", {}).get("spec", {}).get("query", "")
    if _status_numbers(errors) != failed:
        yield f"error-percent counts statuses {_status_numbers(errors)}, not {sorted(failed)}"
    if "or vector(0)" not in errors:
        yield "error-percent has no value (a failed check) when no call failed"
    if not errors.startswith("100 * "):
        yield "error-percent is not in percent"
    if "histogram_quantile(0.99," not in templates.get("latency-p99", {}).get("spec", {}).get(
        "query", ""
    ):
        yield "latency-p99 is not the 99th percentile"
    monitors = find(documents, "PodMonitor")
    for monitor in monitors:
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            scrape = _seconds_of(endpoint.get("interval", "60s"))
            if policy.window_seconds < 2 * scrape:
                yield f"PodMonitor {monitor['metadata']['name']}: scrapes every {scrape:g} s, " + (
                    f"a {policy.window_seconds:g} s window sees no rate"
                )
    for deployment in find(documents, "Deployment"):
        if not any(selects(m["spec"]["selector"], pod_labels(deployment)) for m in monitors):
            yield f"Deployment {deployment['metadata']['name']}: no PodMonitor scrapes its pods"


def _through_flagger_problems(documents: Documents, released: set[str]) -> Iterator[str]:
    """Every route to a service with a Canary (the mesh's and the gateway's) goes
    where Flagger's weights send it: its primary and canary hosts, nowhere else."""
    hosts = host_services(documents)
    for vs in find(documents, "VirtualService"):
        for route in vs["spec"].get("http", []):
            namespace = vs["metadata"]["namespace"]
            destinations = {
                resolve_host(d["destination"]["host"], namespace) for d in route.get("route", [])
            }
            for service in {s for h in destinations for s in hosts.get(h, ())} & released:
                weighted = {
                    resolve_host(f"{service}-{role}", namespace) for role in ("primary", "canary")
                }
                if destinations != weighted:
                    name = f"VirtualService {vs['metadata']['name']}: {route.get('name')}"
                    yield f"{name} goes to {sorted(destinations)}, not through Flagger's weights"


def _analysis_problems(canary: dict[str, Any], policy: Policy) -> Iterator[str]:
    where = f"Canary {canary['metadata']['name']}"
    analysis = canary["spec"]["analysis"]
    if _seconds_of(analysis.get("interval", "1m")) != policy.window_seconds:
        window = f"the {policy.window_seconds:g} s window"
        yield f"{where}: interval {analysis.get('interval')} is not {window}"
    if analysis.get("threshold") != 1:
        yield f"{where}: rolls back after {analysis.get('threshold')} failed checks, not the first"
    # Flagger's promotion is the policy's last step (100 %).
    if analysis.get("stepWeights") != list(policy.steps_percent[:-1]):
        yield f"{where}: steps {analysis.get('stepWeights')} != policy {policy.steps_percent}"
    wanted = {
        "requests": {"min": policy.min_requests},
        "error-percent": {"max": round(100 * policy.max_error_rate, 12)},
        "latency-p99": {"max": policy.max_p99_ms},
    }
    metrics = {m["name"]: m for m in analysis.get("metrics", [])}
    if set(metrics) != set(wanted):
        yield f"{where}: checks {sorted(metrics)}, want {sorted(wanted)}"
    for name, bounds in wanted.items():
        metric = metrics.get(name, {})
        if metric.get("thresholdRange") != bounds:
            yield f"{where}: {name} range {metric.get('thresholdRange')} != policy {bounds}"
        if _seconds_of(metric.get("interval", "")) != policy.window_seconds:
            yield f"{where}: {name} measured over {metric.get('interval')}, not the window"
        if metric.get("templateRef", {}).get("name") != name:
            yield f"{where}: {name} is not read from MetricTemplate {name}"


def canary_problems(documents: Documents, policy: Policy | None = None) -> list[str]:
    """Where a Canary exists (progressive delivery): one per service of proto/, on the
    service's Deployment and autoscaler, following the rollout policy, its routes
    delegated (Flagger's VirtualService has no host of its own), and the release's
    replicas left to Flagger. Without Canaries (the base) there is nothing to check."""
    canaries = find(documents, "Canary")
    if not canaries:
        return []
    policy = policy or rollout.load()
    problems = list(_template_problems(documents, policy))
    for service in contracts.services():
        found = [c for c in canaries if c["metadata"]["name"] == service]
        if len(found) != 1:
            problems.append(f"{service}: {len(found)} Canary (want 1)")
    for canary in canaries:
        where = f"Canary {canary['metadata']['name']}"
        spec = canary["spec"]
        target = find(documents, "Deployment", spec["targetRef"]["name"])
        if spec["targetRef"]["kind"] != "Deployment" or not target:
            problems.append(f"{where}: targets {spec['targetRef']}, which does not exist")
            continue
        if service_of(target[0]) != canary["metadata"]["name"]:
            problems.append(f"{where}: targets the pods of {service_of(target[0])}")
        if "replicas" in target[0]["spec"]:
            problems.append(f"{where}: the overlay sets its target's replicas (Flagger's to set)")
        autoscaled = [h["metadata"]["name"] for h in autoscalers(documents, target[0])]
        if spec.get("autoscalerRef", {}).get("name") not in autoscaled:
            problems.append(f"{where}: autoscalerRef is not {autoscaled}")
        if spec.get("provider", "istio") != "istio":
            problems.append(f"{where}: provider {spec['provider']}")
        service = spec["service"]
        if not service.get("delegation") or service.get("hosts") or service.get("gateways"):
            problems.append(f"{where}: its VirtualService claims hosts (delegation off)")
        if service.get("name", spec["targetRef"]["name"]) != canary["metadata"]["name"]:
            problems.append(f"{where}: Flagger's objects are named {service.get('name')}")
        problems += list(_analysis_problems(canary, policy))
    problems += _through_flagger_problems(documents, {c["metadata"]["name"] for c in canaries})
    return problems


# Every check above that takes only the documents: what an overlay must pass.
CHECKS = (canary_problems,)
