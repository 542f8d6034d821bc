"""Rendered istio/ against its sources: proto/ (mesh.contracts) and shopmesh/topology.yaml.

Every check states the rule in its own terms, reading the rendered YAML, not the
renderer, and returns the problems it found (empty when consistent). An overlay
with Flagger Canaries is checked as it runs once Flagger has initialised them
(flagger_view.as_running): its primary Deployments, Services, DestinationRules
and delegated routes are held to the same rules as the base's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

from google.api import annotations_pb2, field_behavior_pb2
from google.protobuf import descriptor_pb2, descriptor_pool

from mesh import contracts
from services.runtime.end_user import CLAIMS_HEADER
from services.runtime.health import LIVENESS
from shopmesh import topology
from shopmesh.istio.cluster import INGRESS_TARGET_PORTS

from .flagger_view import resolve_host

__all__ = [
    "CHECKS",
    "SERVICE_LABEL",
    "authorization_problems",
    "autoscalers",
    "coverage_problems",
    "destination_rule_problems",
    "end_user_problems",
    "end_user_required",
    "every_pod_problems",
    "find",
    "granted",
    "host_services",
    "istio_path_matches",
    "pod_labels",
    "pod_problems",
    "route_problems",
    "selects",
    "service_of",
    "subset_problems",
    "transcoder_problems",
]

NAMESPACE = "shop"
INGRESS_NAMESPACE = "istio-system"
INGRESS_LABELS = {"istio": "ingressgateway"}
INGRESS_PRINCIPAL = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
# Retrying any of these could repeat work the server did, or retry client errors.
SAFE_RETRY_CONDITIONS = {"connect-failure", "refused-stream", "reset", "unavailable"}
HEALTH_PATHS = {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"}
# The pod label naming the service a pod runs, whichever Deployment it belongs to:
# Flagger's primary keeps it (it rewrites only `app`, its selector label).
SERVICE_LABEL = "app.kubernetes.io/name"
Documents = list[dict[str, Any]]


def find(documents: Documents, kind: str, name: str | None = None) -> Documents:
    return [
        d
        for d in documents
        if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def _host(service: str) -> str:
    return f"{service}.{NAMESPACE}.svc.cluster.local"


def _principal(workload: str) -> str:
    return INGRESS_PRINCIPAL if workload == "edge" else topology.load().principal(workload)


def _selects(document: dict[str, Any], service: str) -> bool:
    """The policy or Service is the service's own: it selects the service by name."""
    selector = (document.get("spec") or {}).get("selector") or {}
    return selector.get("matchLabels", selector) == {SERVICE_LABEL: service}


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return deployment["spec"]["template"]["metadata"].get("labels", {})


def service_of(deployment: dict[str, Any]) -> str | None:
    """The service a Deployment's pods run, as their label says."""
    return pod_labels(deployment).get(SERVICE_LABEL)


_OPERATORS = {
    "In": lambda value, values: value in values,
    "NotIn": lambda value, values: value not in values,
    "Exists": lambda value, values: value is not None,
    "DoesNotExist": lambda value, values: value is None,
}


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Whether a label selector (a LabelSelector, or a Service's plain map) selects
    these labels. No selector selects nothing; an empty one, everything."""
    if selector is None:
        return False
    if not {"matchLabels", "matchExpressions"} & set(selector):
        selector = {"matchLabels": selector}
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()) and all(
        _OPERATORS[e["operator"]](labels.get(e["key"]), e.get("values", []))
        for e in selector.get("matchExpressions", [])
    )


def host_services(documents: Documents) -> dict[str, set[str]]:
    """Service host -> the services whose pods it selects (by the pods' labels)."""
    deployments = find(documents, "Deployment")
    return {
        resolve_host(s["metadata"]["name"], s["metadata"]["namespace"]): {
            service_of(d) for d in deployments if selects(s["spec"].get("selector"), pod_labels(d))
        }
        for s in find(documents, "Service")
    }


def _routed_hosts(documents: Documents, service: str) -> set[str]:
    """The hosts the mesh's routes to a service send its calls to."""
    return {
        resolve_host(destination["destination"]["host"], vs["metadata"]["namespace"])
        for vs in find(documents, "VirtualService")
        if vs["spec"].get("hosts") == [_host(service)]
        for route in vs["spec"]["http"]
        for destination in route.get("route", [])
    }


def coverage_problems(documents: Documents) -> list[str]:
    """Every service in proto/ has the objects it needs to run in the mesh."""
    problems = []
    for service in contracts.services():
        wanted = {
            "ServiceAccount": find(documents, "ServiceAccount", service),
            "Deployment": find(documents, "Deployment", service),
            "Service": find(documents, "Service", service),
            "HorizontalPodAutoscaler": find(documents, "HorizontalPodAutoscaler", service),
            "PodDisruptionBudget": find(documents, "PodDisruptionBudget", service),
            "VirtualService": [
                d
                for d in find(documents, "VirtualService")
                if d["spec"].get("hosts") == [_host(service)]
            ],
            "AuthorizationPolicy": [
                d for d in find(documents, "AuthorizationPolicy") if _selects(d, service)
            ],
        }
        problems += [
            f"{service}: {len(found)} {kind} (want 1)"
            for kind, found in wanted.items()
            if len(found) != 1
        ]
        # Every host its calls go to (its own, or Flagger's primary and canary).
        for host in sorted(_routed_hosts(documents, service)):
            rules = [
                d
                for d in find(documents, "DestinationRule")
                if resolve_host(d["spec"]["host"], d["metadata"]["namespace"]) == host
            ]
            if len(rules) != 1:
                problems.append(f"{service}: {len(rules)} DestinationRule for {host} (want 1)")
        if not _routed_hosts(documents, service):
            problems.append(f"{service}: no route sends calls anywhere")
    return problems


def granted(policy: dict[str, Any]) -> dict[str, set[str]]:
    """principal -> gRPC paths an ALLOW AuthorizationPolicy lets it call."""
    grants: dict[str, set[str]] = {}
    for rule in policy["spec"].get("rules", []):
        principals = [p for f in rule.get("from", []) for p in f["source"].get("principals", [])]
        operations = [t["operation"] for t in rule.get("to", [])]
        paths = {p for op in operations for p in op.get("paths", [])}
        if not principals or not paths or any(op.get("methods") != ["POST"] for op in operations):
            continue  # every rule must name callers, paths and POST; else it grants nothing here
        for principal in principals:
            grants.setdefault(principal, set()).update(paths)
    return grants


def authorization_problems(documents: Documents) -> list[str]:
    """mTLS STRICT, deny by default, and per service exactly the topology's call graph."""
    problems = []
    mesh_topology = topology.load()
    strict = [
        d
        for d in find(documents, "PeerAuthentication")
        if d["metadata"]["namespace"] == NAMESPACE
        and "selector" not in d["spec"]
        and d["spec"].get("mtls", {}).get("mode") == "STRICT"
    ]
    if len(strict) != 1:
        problems.append("namespace shop: no namespace-wide PeerAuthentication STRICT")
    # The shop's own namespace; the gateway's end-user rule is end_user_problems' to check.
    policies = [
        p for p in find(documents, "AuthorizationPolicy") if p["metadata"]["namespace"] == NAMESPACE
    ]
    if not [d for d in policies if d["spec"] == {}]:
        problems.append("namespace shop: no deny-by-default (empty) AuthorizationPolicy")
    for policy in policies:
        spec = policy["spec"]
        if spec and "selector" not in spec:
            problems.append(f"{policy['metadata']['name']}: applies to the whole namespace")
        if spec.get("action", "ALLOW") != "ALLOW":
            problems.append(f"{policy['metadata']['name']}: action {spec['action']}")
    accounts = {d["metadata"]["name"] for d in find(documents, "ServiceAccount")}
    named = {p for policy in policies for p in granted(policy)}
    for principal in sorted(named - {INGRESS_PRINCIPAL}):
        if principal.rpartition("/sa/")[2] not in accounts:
            problems.append(f"{principal}: no ServiceAccount in namespace shop")
    for service in mesh_topology.services:
        expected = {
            _principal(caller): set(paths)
            for caller, paths in mesh_topology.callers(service).items()
        }
        # Health checks: any workload of the mesh, as envoy/'s sidecar RBAC allows.
        for workload in mesh_topology.workloads:
            expected.setdefault(_principal(workload), set()).update(HEALTH_PATHS)
        grants: dict[str, set[str]] = {}
        for policy in (p for p in policies if _selects(p, service)):
            for principal, paths in granted(policy).items():
                grants.setdefault(principal, set()).update(paths)
        for principal in sorted(set(expected) | set(grants)):
            missing = expected.get(principal, set()) - grants.get(principal, set())
            extra = grants.get(principal, set()) - expected.get(principal, set())
            if missing:
                problems.append(f"{service}: {principal} may not call {sorted(missing)}")
            if extra:
                problems.append(f"{service}: {principal} may also call {sorted(extra)}")
    return problems


def _mesh_may_retry(policy: contracts.MethodPolicy) -> bool:
    """Reads; mutations whose every accepted call carries a request_id the server
    deduplicates on (REQUIRED); IDEMPOTENT mutations that have no request_id."""
    if policy.is_read:
        return True
    if policy.has_request_id:
        field = policy.descriptor.input_type.fields_by_name["request_id"]
        behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
        return field_behavior_pb2.REQUIRED in behaviors
    return policy.idempotency is contracts.Idempotency.IDEMPOTENT


def _seconds(duration: str) -> float:
    return float(duration.removesuffix("s")) if duration.endswith("s") else -1.0


def _route_problems(
    route: dict[str, Any], service: str, where: str, hosts: dict[str, set[str]]
) -> Iterator[str]:
    matches = route.get("match", [])
    path = matches[0]["uri"].get("exact") if len(matches) == 1 else None
    if path is None:
        yield f"{where}: route {route.get('name')} does not match one exact gRPC path"
        return
    policy = contracts.method_policy(path)
    if policy.service != service:
        yield f"{where}: {path} routed to {service}"
    if _seconds(route.get("timeout", "")) != policy.timeout:
        yield f"{where}: {path} timeout {route.get('timeout')} != contract {policy.timeout}s"
    retries = route.get("retries") or {}
    conditions = set(filter(None, retries.get("retryOn", "").split(",")))
    if "attempts" not in retries:
        yield f"{where}: {path} leaves retries to Istio's default (set attempts)"
    elif _mesh_may_retry(policy):
        if retries["attempts"] < 1 or "unavailable" not in conditions:
            yield f"{where}: {path} is retry-safe but not retried on unavailable"
    elif retries["attempts"] != 0:
        yield f"{where}: {path} is not retry-safe but has {retries['attempts']} retries"
    if conditions - SAFE_RETRY_CONDITIONS:
        yield f"{where}: {path} retries on {sorted(conditions - SAFE_RETRY_CONDITIONS)}"
    if not route.get("route"):
        yield f"{where}: {path} goes nowhere (no destination, or a delegate that does not exist)"
    for destination in route.get("route", []):
        host = destination["destination"]["host"]
        if hosts.get(host) != {service}:
            yield f"{where}: {path} goes to {host}"


def route_problems(documents: Documents) -> list[str]:
    """Per-RPC routes of the mesh and the gateway carry the contract's timeout and retries."""
    problems = []
    mesh_topology = topology.load()
    hosts = host_services(documents)
    for service, contract in contracts.services().items():
        for vs in find(documents, "VirtualService"):
            if vs["spec"].get("hosts") != [_host(service)]:
                continue
            where = f"VirtualService {vs['metadata']['name']}"
            routed = set()
            for route in vs["spec"]["http"]:
                if not route.get("match"):
                    continue  # the catch-all, checked below
                routed.add(route["match"][0]["uri"].get("exact"))
                problems += _route_problems(route, service, where, hosts)
            missing = {p.path for p in contract.methods.values()} - routed
            problems += [f"{where}: no route for {path}" for path in sorted(missing)]
            last = vs["spec"]["http"][-1]
            if last.get("match") or last.get("retries", {}).get("attempts") != 0:
                problems.append(f"{where}: last route must be a catch-all without retries")
    edge_paths = {
        path: service
        for service in mesh_topology.services
        for path in mesh_topology.callers(service).get("edge", ())
    }
    for vs in find(documents, "VirtualService", "ingress"):
        where = "VirtualService ingress"
        routed = {}
        for route in vs["spec"]["http"]:
            served = {
                s for d in route.get("route", []) for s in hosts.get(d["destination"]["host"], ())
            }
            service = served.pop() if len(served) == 1 else f"{len(served)} services"
            routed[(route.get("match") or [{}])[0].get("uri", {}).get("exact")] = service
            problems += _route_problems(route, service, where, hosts)
        if routed != edge_paths:
            problems.append(
                f"{where}: routes {sorted(routed, key=str)} != edge's {sorted(edge_paths)}"
            )
    return problems


def destination_rule_problems(documents: Documents) -> list[str]:
    problems = []
    for rule in find(documents, "DestinationRule"):
        where = f"DestinationRule {rule['metadata']['name']}"
        policy = rule["spec"].get("trafficPolicy", {})
        if policy.get("loadBalancer", {}).get("simple") != "LEAST_REQUEST":
            problems.append(f"{where}: load balancer is not LEAST_REQUEST")
        if policy.get("tls", {}).get("mode") != "ISTIO_MUTUAL":
            problems.append(f"{where}: tls mode is not ISTIO_MUTUAL")
        if not policy.get("outlierDetection"):
            problems.append(f"{where}: no outlierDetection")
        http = policy.get("connectionPool", {}).get("http", {})
        for field in ("http2MaxRequests", "maxRequestsPerConnection"):
            if not http.get(field):
                problems.append(f"{where}: connectionPool.http.{field} unset")
    return problems


def _container_port(deployment: dict[str, Any], target: int | str) -> int | None:
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        for port in container.get("ports", []):
            if target in (port["containerPort"], port.get("name")):
                return port["containerPort"]
    return None


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def pod_problems(documents: Documents) -> list[str]:
    """Pods: probes on the port the Services expose, health names, hardening, drain, env."""
    problems = []
    mesh_topology = topology.load()
    for deployment in find(documents, "Deployment"):
        where = f"Deployment {deployment['metadata']['name']}"
        service = service_of(deployment)
        if service not in mesh_topology.services:
            problems.append(f"{where}: its pods' {SERVICE_LABEL} names no service: {service}")
            continue
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        services = [
            s
            for s in find(documents, "Service")
            if selects(s["spec"].get("selector"), pod_labels(deployment))
        ]
        if not services:
            problems.append(f"{where}: no Service selects its pods")
            continue
        exposed = set()
        for port in (p for s in services for p in s["spec"]["ports"]):
            if (port.get("name"), port.get("appProtocol")) != ("grpc", "grpc"):
                problems.append(f"{where}: Service port is not named grpc with appProtocol grpc")
            exposed.add(_container_port(deployment, port["targetPort"]))
        if len(exposed) != 1:
            problems.append(f"{where}: its Services lead to ports {sorted(map(str, exposed))}")
            continue
        (exposed,) = exposed
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = container.get(kind, {}).get("grpc")
            if probe is None:
                problems.append(f"{where}: no gRPC {kind}")
            elif probe["port"] != exposed:
                problems.append(f"{where}: {kind} port {probe['port']} != Service's {exposed}")
        readiness = container.get("readinessProbe", {}).get("grpc", {})
        if readiness.get("service") != contracts.service(service).full_name:
            problems.append(f"{where}: readiness does not ask for {service}'s health")
        # Liveness asks for the runtime's LIVENESS name, which survives store failures
        # and drains; "" or the service's name would restart every pod in an outage.
        liveness = container.get("livenessProbe", {}).get("grpc", {})
        if liveness.get("service") != LIVENESS:
            problems.append(
                f"{where}: liveness asks for {liveness.get('service')!r}, not {LIVENESS!r}"
            )
        for kind in ("startupProbe", "readinessProbe"):
            if container.get(kind, {}).get("grpc", {}).get("service") == LIVENESS:
                problems.append(f"{where}: {kind} asks for {LIVENESS!r}, which ignores the store")
        if container.get("args") != [service]:
            problems.append(f"{where}: runs {container.get('args')}, not {service}")
        if _fewest_pods(documents, deployment) < 2:
            problems.append(f"{where}: fewer than 2 pods")
        if not (
            container.get("resources", {}).get("requests") and container["resources"].get("limits")
        ):
            problems.append(f"{where}: resource requests/limits missing")
        security = container.get("securityContext", {})
        if not (
            pod.get("securityContext", {}).get("runAsNonRoot")
            and security.get("readOnlyRootFilesystem")
        ):
            problems.append(f"{where}: not non-root with a read-only root filesystem")
        env = _env(container)
        drain = float(env.get("SHOPMESH_DRAIN_SECONDS", "10"))
        pre_stop = (
            container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        )
        if pod.get("terminationGracePeriodSeconds", 30) <= drain + pre_stop:
            problems.append(f"{where}: grace period does not exceed pre-stop + drain")
        upstreams = mesh_topology.upstreams(service)
        wanted = {f"SHOPMESH_UPSTREAM_{u.upper()}": f"{u}:{exposed}" for u in upstreams}
        given = {k: v for k, v in env.items() if k.startswith("SHOPMESH_UPSTREAM_")}
        if given != wanted:
            problems.append(f"{where}: upstreams {given} != {wanted}")
        if upstreams and env.get("SHOPMESH_APP_RETRIES") != "0":
            problems.append(f"{where}: app retries on while the sidecar retries")
    return problems


def autoscalers(documents: Documents, deployment: dict[str, Any]) -> Documents:
    return [
        h
        for h in find(documents, "HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        and h["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    ]


def _fewest_pods(documents: Documents, deployment: dict[str, Any]) -> int:
    """What the Deployment runs at least: its autoscaler's floor, else its replicas."""
    floors = [h["spec"].get("minReplicas", 1) for h in autoscalers(documents, deployment)]
    return min(floors) if floors else deployment["spec"].get("replicas", 1)


def _rest_services() -> list[str]:
    return sorted(
        c.full_name
        for c in contracts.services().values()
        if any(
            m.descriptor.GetOptions().HasExtension(annotations_pb2.http) for m in c.methods.values()
        )
    )


def transcoder_problems(documents: Documents) -> list[str]:
    """The gateway's transcoder serves exactly the REST-annotated services of proto/."""
    filters = [
        patch["patch"]["value"]["typed_config"]
        for envoy_filter in find(documents, "EnvoyFilter")
        for patch in envoy_filter["spec"]["configPatches"]
        if patch["patch"]["value"].get("name") == "envoy.filters.http.grpc_json_transcoder"
    ]
    if len(filters) != 1:
        return [f"{len(filters)} gRPC-JSON transcoders at the gateway (want 1)"]
    config = filters[0]
    problems = _shared_gateway_problems(documents, config)
    if sorted(config["services"]) != _rest_services():
        problems.append(
            f"transcoder services {config['services']} != REST services {_rest_services()}"
        )
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(
        base64.b64decode(config["proto_descriptor_bin"])
    )
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_set.file:
        pool.Add(file)
    for name in config["services"]:
        try:
            served = pool.FindServiceByName(name)
        except KeyError:
            problems.append(f"transcoder descriptor lacks {name}")
            continue
        contract = next(c for c in contracts.services().values() if c.full_name == name)
        for method in contract.methods.values():
            options = served.methods_by_name[method.name].GetOptions()
            if method.http is not None and options.Extensions[annotations_pb2.http] != method.http:
                problems.append(f"transcoder: {method.path} HTTP rule differs from proto/")
    return problems


def _shared_gateway_problems(documents: Documents, config: dict[str, Any]) -> list[str]:
    """The ingress gateway is shared with other apps: the transcoder must not answer for them.

    It lets requests it cannot map pass (the routes decide), and it sits only on the
    listener of the shop Gateway's HTTPS server, not on every listener of the gateway.
    """
    problems = []
    validation = config.get("request_validation_options", {})
    if validation.get("reject_unknown_method", False):
        problems.append(
            "transcoder rejects unknown methods: other apps on the shared gateway get 404"
        )
    https_ports = {
        INGRESS_TARGET_PORTS.get(server["port"]["number"])
        for gateway in find(documents, "Gateway")
        for server in gateway["spec"]["servers"]
        if server["port"]["protocol"] == "HTTPS"
    }
    for envoy_filter in find(documents, "EnvoyFilter"):
        for patch in envoy_filter["spec"]["configPatches"]:
            if patch["patch"]["value"].get("name") != "envoy.filters.http.grpc_json_transcoder":
                continue
            match = patch.get("match", {})
            port = match.get("listener", {}).get("portNumber")
            if match.get("context") != "GATEWAY":
                problems.append(f"transcoder patch context {match.get('context')!r}, not GATEWAY")
            if port is None:
                problems.append("transcoder patch matches every listener of the shared gateway")
            elif port not in https_ports:
                problems.append(
                    f"transcoder on listener port {port}; the shop Gateway's HTTPS listener"
                    f" ports are {sorted(p for p in https_ports if p)}"
                )
    return problems


def subset_problems(documents: Documents) -> list[str]:
    """Every DestinationRule subset selects some pods of its host's service."""
    problems = []
    deployments = find(documents, "Deployment")
    for rule in find(documents, "DestinationRule"):
        service = rule["spec"]["host"].split(".")[0]
        for subset in rule["spec"].get("subsets", []):
            wanted = {**subset.get("labels", {}), SERVICE_LABEL: service}
            if not any(selects(wanted, pod_labels(d)) for d in deployments):
                problems.append(f"{service}: subset {subset['name']} selects no Deployment's pods")
    return problems


def every_pod_problems(documents: Documents) -> list[str]:
    """Every Deployment of a service, Flagger's primary too: the service's authorization
    (and end users' token checks) reach its pods, one disruption budget of its own
    keeps one of them through drains, and an autoscaler sizes it."""
    problems = []
    mesh_topology = topology.load()
    deployments = find(documents, "Deployment")
    for deployment in deployments:
        where = f"Deployment {deployment['metadata']['name']}"
        service, labels = service_of(deployment), pod_labels(deployment)
        reaching = {
            kind: [
                d["metadata"]["name"]
                for d in find(documents, kind)
                if d["metadata"]["namespace"] == NAMESPACE
                and selects(d["spec"].get("selector"), labels)
            ]
            for kind in ("AuthorizationPolicy", "RequestAuthentication")
        }
        if not reaching["AuthorizationPolicy"]:
            problems.append(f"{where}: no AuthorizationPolicy but deny-all reaches its pods")
        if mesh_topology.needs_end_user(service) and not reaching["RequestAuthentication"]:
            problems.append(f"{where}: no RequestAuthentication checks its end users' tokens")
        budgets = [
            b
            for b in find(documents, "PodDisruptionBudget")
            if selects(b["spec"].get("selector"), labels)
        ]
        if len(budgets) != 1:
            problems.append(f"{where}: {len(budgets)} PodDisruptionBudgets (want 1)")
        for budget in budgets:
            others = [
                d["metadata"]["name"]
                for d in deployments
                if d is not deployment and selects(budget["spec"].get("selector"), pod_labels(d))
            ]
            if others:
                problems.append(
                    f"{where}: PodDisruptionBudget {budget['metadata']['name']} also counts"
                    f" {others}' pods (one of theirs would satisfy it)"
                )
        if len(autoscalers(documents, deployment)) != 1:
            problems.append(f"{where}: {len(autoscalers(documents, deployment))} autoscalers")
    return problems


def end_user_required(policy: dict[str, Any]) -> dict[str, set[str]]:
    """principal -> gRPC paths an ALLOW policy grants it only with a request principal."""
    found: dict[str, set[str]] = {}
    for rule in policy["spec"].get("rules", []):
        for source in (f["source"] for f in rule.get("from", [])):
            if source.get("requestPrincipals") != ["*"]:
                continue
            paths = {p for t in rule.get("to", []) for p in t["operation"].get("paths", [])}
            for principal in source.get("principals", []):
                found.setdefault(principal, set()).update(paths)
    return found


def istio_path_matches(pattern: str, path: str) -> bool:
    """Istio's `paths` semantics: exact, `prefix*`, `*suffix` or `*`."""
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return path.endswith(pattern[1:])
    return path == pattern


def _example_rest_path(method: contracts.MethodPolicy) -> str | None:
    """A concrete REST path of the method's HTTP rule ("{id}" filled in)."""
    if method.http is None:
        return None
    template = getattr(method.http, method.http.WhichOneof("pattern"))
    while "{" in template:
        start, end = template.index("{"), template.index("}")
        template = template[:start] + "some-id" + template[end + 1 :]
    return template


def _jwks_problems(where: str, text: str) -> list[str]:
    try:
        keys = json.loads(text)["keys"]
    except (ValueError, KeyError, TypeError):
        return [f"{where}: jwks is not a JSON Web Key Set"]
    problems = []
    kids = [k.get("kid") for k in keys]
    if len(keys) < 2 or len(set(kids)) != len(kids) or None in kids:
        problems.append(f"{where}: jwks needs two or more keys with distinct kids (rotation)")
    for key in keys:
        if "d" in key or key.get("kty") != "EC" or key.get("alg") != "ES256":
            problems.append(f"{where}: key {key.get('kid')} is not a public ES256 key")
    return problems


def _jwt_rule(documents: Documents, namespace: str, labels: dict, where: str):
    found = [
        d
        for d in find(documents, "RequestAuthentication")
        if d["metadata"]["namespace"] == namespace
        and d["spec"].get("selector", {}).get("matchLabels") == labels
    ]
    if len(found) != 1 or len(found[0]["spec"].get("jwtRules", [])) != 1:
        return None, [f"{where}: want one RequestAuthentication with one jwtRule"]
    rule = found[0]["spec"]["jwtRules"][0]
    end_users = topology.load().end_users
    problems = _jwks_problems(where, rule.get("jwks", ""))
    if (rule.get("issuer"), rule.get("audiences")) != (end_users.issuer, [end_users.audience]):
        problems.append(f"{where}: issuer/audiences differ from shopmesh/topology.yaml")
    return rule, problems


def end_user_problems(documents: Documents) -> list[str]:
    """Tokens are checked at the gateway and at every workload that acts for end users,
    whose every caller then needs a request principal, and whose app gets the verified
    claims; the gateway refuses their RPCs (gRPC and REST paths) without a token."""
    mesh_topology = topology.load()
    gateway, problems = _jwt_rule(documents, INGRESS_NAMESPACE, INGRESS_LABELS, "gateway")
    if gateway and gateway.get("forwardOriginalToken") is not True:
        problems.append("gateway: does not pass the token on for the workload to check")
    policies = find(documents, "AuthorizationPolicy")
    for service in mesh_topology.services:
        callers = {_principal(c): set(paths) for c, paths in mesh_topology.callers(service).items()}
        required: dict[str, set[str]] = {}
        for policy in (p for p in policies if _selects(p, service)):
            for principal, paths in end_user_required(policy).items():
                required.setdefault(principal, set()).update(paths)
        if not mesh_topology.needs_end_user(service):
            if required:
                problems.append(f"{service}: needs end users, which the topology does not say")
            continue
        if required != callers:
            problems.append(f"{service}: callers needing an end user {required} != {callers}")
        rule, found = _jwt_rule(documents, NAMESPACE, {SERVICE_LABEL: service}, service)
        problems += found
        if rule and rule.get("outputPayloadToHeader") != CLAIMS_HEADER:
            problems.append(f"{service}: the app does not get the verified claims")
        if rule and gateway and rule.get("jwks") != gateway.get("jwks"):
            problems.append(f"{service}: trusts other keys than the gateway")
    denied = [
        p
        for p in policies
        if p["metadata"]["namespace"] == INGRESS_NAMESPACE and p["spec"].get("action") == "DENY"
    ]
    patterns = [
        pattern
        for policy in denied
        for rule in policy["spec"].get("rules", [])
        if any(f["source"].get("notRequestPrincipals") == ["*"] for f in rule.get("from", []))
        for to in rule.get("to", [])
        for pattern in to["operation"].get("paths", [])
    ]
    for service in mesh_topology.services:
        for path in mesh_topology.callers(service).get("edge", ()):
            method = contracts.method_policy(path)
            for sent in filter(None, (path, _example_rest_path(method))):
                refused = any(istio_path_matches(p, sent) for p in patterns)
                if refused != mesh_topology.needs_end_user(service):
                    want = "refused" if mesh_topology.needs_end_user(service) else "let through"
                    problems.append(f"gateway: {sent} without a token is not {want}")
    return problems


# Every check above that takes only the documents: what an overlay must pass.
CHECKS = (
    coverage_problems,
    every_pod_problems,
    subset_problems,
    authorization_problems,
    route_problems,
    destination_rule_problems,
    pod_problems,
    transcoder_problems,
    end_user_problems,
)
