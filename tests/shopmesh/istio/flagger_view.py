"""What the cluster runs once Flagger has initialised the Canaries of a rendered overlay.

There is no cluster here, so the consistency checks read the rendered objects plus
the ones Flagger makes from each Canary, then resolve Istio's VirtualService
delegation, and check the result by the same rules as the base. Flagger's part,
as its documentation and source (pkg/canary/deployment_controller.go,
pkg/router/kubernetes_default.go, pkg/router/istio.go) describe it for a
Deployment target and the Istio provider:

- `<target>-primary`: a copy of the target in which the selector label (the first
  of `app`, `name`, `app.kubernetes.io/name` in the target's selector) is
  `<value>-primary`: the primary's whole selector, in the pod labels (every other
  pod label copied), and in the topology spread and anti-affinity selectors that
  name the target;
- `<autoscaler>-primary`: a copy of the autoscaler, on the primary;
- Services `<name>` and `<name>-primary` selecting the primary's pods, and
  `<name>-canary` the target's: port `service.port`, named `service.portName`;
- DestinationRules `<name>-primary`, `<name>-canary` with `service.trafficPolicy`;
- VirtualService `<name>`: one route, primary 100 / canary 0, with the service's
  `match`, `timeout` and `retries` where set; no hosts or gateways under delegation.

Istio's part: a route with a `delegate` becomes the delegate's routes, each keeping
the root's match, timeout and retries where the delegate has none; a delegate that
does not exist leaves a route to nowhere (`route: []`). Short host names are
resolved in the namespace of the VirtualService that names them.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["SELECTOR_LABELS", "as_running", "primary_name", "resolve_host"]

# Flagger's -selector-labels default: the first one a target's selector has is rewritten.
SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")
# What a Flagger VirtualService route takes from the Canary's service block.
_ROUTE_FIELDS = ("match", "timeout", "retries", "rewrite", "corsPolicy", "headers")
# What an Istio delegate route inherits from its root when it sets none itself.
_INHERITED = ("timeout", "retries", "rewrite", "fault", "mirror", "corsPolicy", "headers")
Documents = list[dict[str, Any]]


def primary_name(name: str) -> str:
    return f"{name}-primary"


def resolve_host(host: str, namespace: str) -> str:
    """A host as Istio reads it in a resource of `namespace`."""
    return host if "." in host else f"{host}.{namespace}.svc.cluster.local"


def _find(documents: Documents, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    for document in documents:
        metadata = document["metadata"]
        if (document["kind"], metadata["name"], metadata.get("namespace")) == (
            kind,
            name,
            namespace,
        ):
            return document
    return None


def _rewrite_selector(selector: dict[str, Any] | None, label: str, target: str) -> None:
    """Flagger's rewrite of spread and anti-affinity selectors that name the target."""
    if not selector:
        return
    if selector.get("matchLabels", {}).get(label) == target:
        selector["matchLabels"][label] = primary_name(target)
    for expression in selector.get("matchExpressions", []):
        if expression["key"] == label and target in expression.get("values", []):
            values = expression["values"]
            values[values.index(target)] = primary_name(target)


def _primary_deployment(target: dict[str, Any]) -> tuple[dict[str, Any], str]:
    primary = copy.deepcopy(target)
    name = target["metadata"]["name"]
    selector = target["spec"]["selector"]["matchLabels"]
    label = next(label for label in SELECTOR_LABELS if label in selector)
    value = primary_name(selector[label])
    primary["metadata"] = {
        "name": primary_name(name),
        "namespace": target["metadata"]["namespace"],
        "labels": {label: value},
    }
    primary["spec"]["selector"] = {"matchLabels": {label: value}}
    primary["spec"]["replicas"] = target["spec"].get("replicas") or 1
    primary["spec"]["template"]["metadata"]["labels"][label] = value
    pod = primary["spec"]["template"]["spec"]
    for constraint in pod.get("topologySpreadConstraints", []):
        _rewrite_selector(constraint.get("labelSelector"), label, name)
    anti = pod.get("affinity", {}).get("podAntiAffinity", {})
    for term in anti.get("requiredDuringSchedulingIgnoredDuringExecution", []):
        _rewrite_selector(term.get("labelSelector"), label, name)
    for term in anti.get("preferredDuringSchedulingIgnoredDuringExecution", []):
        _rewrite_selector(term["podAffinityTerm"].get("labelSelector"), label, name)
    return primary, label


def _flagger_objects(canary: dict[str, Any], documents: Documents) -> Documents:
    """What Flagger makes from one Canary; nothing when its target does not exist."""
    spec = canary["spec"]
    namespace = canary["metadata"]["namespace"]
    target = _find(documents, "Deployment", spec["targetRef"]["name"], namespace)
    if target is None:
        return []
    primary, label = _primary_deployment(target)
    made = [primary]
    autoscaler = spec.get("autoscalerRef")
    hpa = autoscaler and _find(documents, "HorizontalPodAutoscaler", autoscaler["name"], namespace)
    if hpa:
        copied = copy.deepcopy(hpa)
        copied["metadata"] = {"name": primary_name(autoscaler["name"]), "namespace": namespace}
        copied["spec"]["scaleTargetRef"]["name"] = primary["metadata"]["name"]
        made.append(copied)
    service = spec["service"]
    name = service.get("name", target["metadata"]["name"])
    port = {
        "name": service.get("portName", "http"),
        "port": service["port"],
        "targetPort": service.get("targetPort", service["port"]),
        "protocol": "TCP",
    }
    if "appProtocol" in service:
        port["appProtocol"] = service["appProtocol"]
    target_value = target["spec"]["selector"]["matchLabels"][label]
    for service_name, pods in (
        (name, primary_name(target_value)),
        (primary_name(name), primary_name(target_value)),
        (f"{name}-canary", target_value),
    ):
        made.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": service_name, "namespace": namespace},
                "spec": {"selector": {label: pods}, "ports": [port]},
            }
        )
    hosts = (primary_name(name), f"{name}-canary")
    for host in hosts:
        rule: dict[str, Any] = {"host": host}
        if "trafficPolicy" in service:
            rule["trafficPolicy"] = service["trafficPolicy"]
        made.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": host, "namespace": namespace},
                "spec": rule,
            }
        )
    route: dict[str, Any] = {k: service[k] for k in _ROUTE_FIELDS if k in service}
    route["route"] = [
        {"destination": {"host": host}, "weight": weight}
        for host, weight in zip(hosts, (100, 0), strict=True)
    ]
    virtual_service: dict[str, Any] = {"http": [route]}
    if not service.get("delegation"):
        virtual_service["hosts"] = [*service.get("hosts", []), name]
        virtual_service["gateways"] = service.get("gateways") or ["mesh"]
    made.append(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": name, "namespace": namespace},
            "spec": virtual_service,
        }
    )
    return made


def _merged(root: dict[str, Any], delegate: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(delegate)
    if not merged.get("match"):
        merged.pop("match", None)
        if root.get("match"):
            merged["match"] = root["match"]
    # A delegate that narrows the root's match is not modelled: Flagger's has none.
    merged["name"] = root.get("name", merged.get("name"))
    for field in _INHERITED:
        if field not in merged and field in root:
            merged[field] = root[field]
    return merged


def _resolve_delegation(documents: Documents) -> None:
    for virtual_service in (d for d in documents if d["kind"] == "VirtualService"):
        namespace = virtual_service["metadata"].get("namespace")
        routes = []
        for route in virtual_service["spec"].get("http", []):
            if "delegate" not in route:
                routes.append(route)
                continue
            reference = route["delegate"]
            delegate_namespace = reference.get("namespace", namespace)
            delegate = _find(documents, "VirtualService", reference["name"], delegate_namespace)
            if delegate is None:
                stranded = {k: v for k, v in route.items() if k != "delegate"}
                routes.append({**stranded, "route": []})
                continue
            for inner in delegate["spec"].get("http", []):
                merged = _merged(route, inner)
                for destination in merged.get("route", []):
                    host = destination["destination"]["host"]
                    destination["destination"]["host"] = resolve_host(host, delegate_namespace)
                routes.append(merged)
        virtual_service["spec"]["http"] = routes


def as_running(documents: Documents) -> Documents:
    """The rendered objects plus Flagger's, delegation resolved (a copy)."""
    running = copy.deepcopy(documents)
    for canary in [d for d in running if d["kind"] == "Canary"]:
        running += _flagger_objects(canary, running)
    _resolve_delegation(running)
    return running
