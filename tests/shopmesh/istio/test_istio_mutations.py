"""Deliberately broken copies of the rendered manifests are caught by the checks.

Each mutation breaks one thing in a copy of an overlay (typo'd field, wrong enum,
missing AuthZ rule, drifted policy, a volume claim, a pg_hba hole, a Canary off
the rollout policy...) and names the checks that must object. The consistency
checks read the copy as it runs once Flagger has initialised its Canaries.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from shopmesh.istio.manifests import ISTIO_DIR

from . import database_consistency, istio_consistency, progressive_delivery_consistency
from .database_consistency import secret_problems
from .flagger_view import as_running
from .istio_consistency import find
from .istio_validation import (
    KUBERNETES_VERSION,
    is_custom_resource,
    is_istio,
    kubernetes_problems,
    model_problems,
    schema_problems,
)

Documents = list[dict[str, Any]]


def _one(documents: Documents, kind: str, name: str) -> dict[str, Any]:
    (found,) = find(documents, kind, name)
    return found


def _route(documents: Documents, service: str, method: str) -> dict[str, Any]:
    vs = _one(documents, "VirtualService", service)
    (found,) = [r for r in vs["spec"]["http"] if r.get("name") == method]
    return found


def _container(documents: Documents, name: str) -> dict[str, Any]:
    return _one(documents, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]


def _rename(mapping: dict[str, Any], old: str, new: str) -> None:
    mapping[new] = mapping.pop(old)


def _rules(documents: Documents, service: str) -> list[dict[str, Any]]:
    return _one(documents, "AuthorizationPolicy", f"{service}-callers")["spec"]["rules"]


def _drop_order_rule(documents: Documents) -> None:
    rules = _rules(documents, "inventory")
    rules[:] = [r for r in rules if "sa/order" not in str(r["from"])]


def _grant_restock_to_order(documents: Documents) -> None:
    rule = next(r for r in _rules(documents, "inventory") if "sa/order" in str(r["from"]))
    rule["to"][0]["operation"]["paths"].append("/shop.inventory.v1.InventoryService/Restock")


def _drop_order_from_transcoder(documents: Documents) -> None:
    config = _one(documents, "EnvoyFilter", "grpc-json-transcoder")["spec"]["configPatches"][0]
    config["patch"]["value"]["typed_config"]["services"].remove("shop.order.v1.OrderService")


def _transcoder_patch(documents: Documents) -> dict[str, Any]:
    return _one(documents, "EnvoyFilter", "grpc-json-transcoder")["spec"]["configPatches"][0]


def _transcoder_config(documents: Documents) -> dict[str, Any]:
    return _transcoder_patch(documents)["patch"]["value"]["typed_config"]


def _transcoder_match(documents: Documents) -> dict[str, Any]:
    return _transcoder_patch(documents)["match"]


def _pod(documents: Documents, name: str) -> dict[str, Any]:
    return _one(documents, "Deployment", name)["spec"]["template"]["spec"]


def _env(documents: Documents, deployment: str, name: str) -> dict[str, Any]:
    (entry,) = [e for e in _container(documents, deployment)["env"] if e["name"] == name]
    return entry


def _cluster_spec(documents: Documents) -> dict[str, Any]:
    return _one(documents, "Cluster", "shop-postgres")["spec"]


def _role(documents: Documents, name: str) -> dict[str, Any]:
    (role,) = [r for r in _cluster_spec(documents)["managed"]["roles"] if r["name"] == name]
    return role


def _hba(documents: Documents) -> list[str]:
    return _cluster_spec(documents)["postgresql"]["pg_hba"]


def _replace_hba(old: str, new: str | None) -> Callable[[Documents], None]:
    def mutate(documents: Documents) -> None:
        rules = _hba(documents)
        i = rules.index(old)
        if new is None:
            del rules[i]
        else:
            rules[i] = new

    return mutate


def _add_volume_claim(documents: Documents) -> None:
    documents.append(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "order-data", "namespace": "shop"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )


def _mount_volume_claim(documents: Documents) -> None:
    _pod(documents, "order")["volumes"].append(
        {"name": "data", "persistentVolumeClaim": {"claimName": "order-data"}}
    )


def _pin_to_one_node(documents: Documents) -> None:
    term = {
        "labelSelector": {"matchLabels": {"app": "inventory"}},
        "topologyKey": "kubernetes.io/hostname",
    }
    _pod(documents, "inventory")["affinity"] = {
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
    }


def _conninfo_before_its_password(documents: Documents) -> None:
    env = _container(documents, "payment")["env"]
    (url,) = [e for e in env if e["name"] == "SHOPMESH_GATEWAY_DATABASE_URL"]
    env.remove(url)
    env.insert(0, url)


def _jwt_rule(documents: Documents, name: str) -> dict[str, Any]:
    return _one(documents, "RequestAuthentication", name)["spec"]["jwtRules"][0]


def _order_callers_without_end_users(documents: Documents) -> None:
    for rule in _rules(documents, "order"):
        for source in rule["from"]:
            source["source"].pop("requestPrincipals", None)


def _one_key_only(documents: Documents) -> None:
    rule = _jwt_rule(documents, "order-end-users")
    keys = json.loads(rule["jwks"])
    rule["jwks"] = json.dumps({"keys": keys["keys"][:1]})


def _private_key_in_the_jwks(documents: Documents) -> None:
    rule = _jwt_rule(documents, "shop-end-users")
    keys = json.loads(rule["jwks"])
    keys["keys"][0]["d"] = "c2VjcmV0"
    rule["jwks"] = json.dumps(keys)


def _rest_orders_open_at_the_gateway(documents: Documents) -> None:
    (rule,) = _one(documents, "AuthorizationPolicy", "shop-end-users-required")["spec"]["rules"]
    paths = rule["to"][0]["operation"]["paths"]
    paths[:] = [p for p in paths if not p.startswith("/v1/")]


def _drop_document(kind: str, name: str) -> Callable[[Documents], None]:
    def mutate(documents: Documents) -> None:
        documents.remove(_one(documents, kind, name))

    return mutate


# (what is broken, how, the checks that must report it)
MUTATIONS: list[tuple[str, Callable[[Documents], None], tuple[str, ...]]] = [
    (
        "typo'd DestinationRule field",
        lambda d: _rename(
            _one(d, "DestinationRule", "catalog")["spec"]["trafficPolicy"],
            "outlierDetection",
            "outlierDetecton",
        ),
        ("schema", "model"),
    ),
    (
        "typo'd retry field",
        lambda d: _rename(_route(d, "catalog", "GetProduct")["retries"], "retryOn", "retryon"),
        ("schema", "model", "consistency"),
    ),
    (
        "typo'd top-level key",
        lambda d: _rename(_one(d, "AuthorizationPolicy", "order-callers"), "spec", "spce"),
        ("schema", "model"),
    ),
    (
        "wrong load balancer enum",
        lambda d: _one(d, "DestinationRule", "order")["spec"]["trafficPolicy"][
            "loadBalancer"
        ].update(simple="LEAST_REQUESTS"),
        ("schema", "model", "consistency"),
    ),
    (
        "wrong mTLS mode enum",
        lambda d: _one(d, "PeerAuthentication", "default")["spec"]["mtls"].update(mode="STRICTT"),
        ("schema", "model", "consistency"),
    ),
    (
        "wrong EnvoyFilter applyTo enum",
        lambda d: _one(d, "EnvoyFilter", "grpc-json-transcoder")["spec"]["configPatches"][0].update(
            applyTo="HTTP_FILTERS"
        ),
        ("schema", "model"),
    ),
    (
        "retry attempts of the wrong type",
        lambda d: _route(d, "payment", "Charge")["retries"].update(attempts="two"),
        ("schema", "model"),
    ),
    (
        "timeout without a unit",
        lambda d: _route(d, "order", "GetOrder").update(timeout="500"),
        ("schema", "consistency"),
    ),
    ("missing AuthZ rule", _drop_order_rule, ("consistency",)),
    ("AuthZ grants an RPC the topology does not", _grant_restock_to_order, ("consistency",)),
    (
        "a caller's identity does not exist",
        _drop_document("ServiceAccount", "ops"),
        ("consistency",),
    ),
    (
        "no deny-by-default policy",
        _drop_document("AuthorizationPolicy", "deny-all"),
        ("consistency",),
    ),
    (
        "a service without DestinationRule",
        _drop_document("DestinationRule", "payment"),
        ("consistency",),
    ),
    (
        "timeout drifted from the contract",
        lambda d: _route(d, "catalog", "GetProduct").update(timeout="5s"),
        ("consistency",),
    ),
    (
        "a read that is not retried",
        lambda d: _route(d, "inventory", "GetStock").update(retries={"attempts": 0}),
        ("consistency",),
    ),
    (
        "retries on errors that may have acted",
        lambda d: _route(d, "payment", "Charge")["retries"].update(retryOn="unavailable,5xx"),
        ("consistency",),
    ),
    ("transcoder misses a REST service", _drop_order_from_transcoder, ("consistency",)),
    (
        "transcoder 404s other apps' paths on the shared gateway",
        lambda d: _transcoder_config(d)["request_validation_options"].update(
            reject_unknown_method=True
        ),
        ("consistency",),
    ),
    (
        "transcoder on every listener of the shared gateway",
        lambda d: _transcoder_match(d)["listener"].pop("portNumber"),
        ("consistency",),
    ),
    (
        # 443 is the Service port; the gateway's Envoy listens on 8443 for it.
        "transcoder on the Service port instead of the listener's",
        lambda d: _transcoder_match(d)["listener"].update(portNumber=443),
        ("consistency",),
    ),
    (
        "transcoder on the HTTP listener, which only redirects",
        lambda d: _transcoder_match(d)["listener"].update(portNumber=8080),
        ("consistency",),
    ),
    (
        "typo'd Deployment field",
        lambda d: _rename(_container(d, "catalog"), "readinessProbe", "readinesProbe"),
        ("kubernetes", "consistency"),
    ),
    (
        # Kubernetes' schemas carry no enums for these fields; a wrong type is caught.
        "Service port of the wrong type",
        lambda d: _one(d, "Service", "order")["spec"]["ports"][0].update(port="grpc"),
        ("kubernetes",),
    ),
    (
        "probe on a port the Service does not expose",
        lambda d: _container(d, "inventory")["livenessProbe"]["grpc"].update(port=9464),
        ("consistency",),
    ),
    (
        # The overall status goes NOT_SERVING with the store: an outage restarts every pod.
        "liveness probe on the overall status",
        lambda d: _container(d, "catalog")["livenessProbe"]["grpc"].pop("service"),
        ("consistency",),
    ),
    (
        "liveness probe on the service's status",
        lambda d: _container(d, "order")["livenessProbe"]["grpc"].update(
            service="shop.order.v1.OrderService"
        ),
        ("consistency",),
    ),
    (
        "readiness probe on the liveness name",
        lambda d: _container(d, "payment")["readinessProbe"]["grpc"].update(service="liveness"),
        ("consistency",),
    ),
    (
        "Service port without appProtocol grpc",
        lambda d: _one(d, "Service", "payment")["spec"]["ports"][0].pop("appProtocol"),
        ("consistency",),
    ),
    (
        "grace period shorter than the drain",
        lambda d: _one(d, "Deployment", "order")["spec"]["template"]["spec"].update(
            terminationGracePeriodSeconds=10
        ),
        ("consistency",),
    ),
    (
        "order callers need no end user",
        _order_callers_without_end_users,
        ("consistency",),
    ),
    (
        "the gateway checks tokens of another issuer",
        lambda d: _jwt_rule(d, "shop-end-users").update(issuer="https://elsewhere.example"),
        ("consistency",),
    ),
    (
        "the order workload checks tokens for another audience",
        lambda d: _jwt_rule(d, "order-end-users").update(audiences=["another-api"]),
        ("consistency",),
    ),
    (
        "the order app gets no verified claims",
        lambda d: _jwt_rule(d, "order-end-users").pop("outputPayloadToHeader"),
        ("consistency",),
    ),
    ("a JWKS that cannot rotate (one key)", _one_key_only, ("consistency",)),
    ("a private key in the JWKS", _private_key_in_the_jwks, ("consistency",)),
    (
        "no token checks at the order workload",
        _drop_document("RequestAuthentication", "order-end-users"),
        ("consistency",),
    ),
    (
        "REST order paths open at the gateway without a token",
        _rest_orders_open_at_the_gateway,
        ("consistency",),
    ),
    (
        "no end-user rule at the gateway",
        _drop_document("AuthorizationPolicy", "shop-end-users-required"),
        ("consistency",),
    ),
    (
        "typo'd RequestAuthentication field",
        lambda d: _rename(
            _jwt_rule(d, "order-end-users"), "outputPayloadToHeader", "outputPayload"
        ),
        ("schema", "model", "consistency"),
    ),
    # --- state: stateless pods, CloudNativePG, connections, Secrets ---------------------
    ("a volume claim comes back", _add_volume_claim, ("consistency",)),
    ("a Deployment mounts a volume claim", _mount_volume_claim, ("consistency",)),
    ("pods pinned to one node", _pin_to_one_node, ("consistency",)),
    (
        "pods not spread over nodes",
        lambda d: _pod(d, "catalog").pop("topologySpreadConstraints"),
        ("consistency",),
    ),
    (
        "node spread that only prefers",
        lambda d: _pod(d, "order")["topologySpreadConstraints"][0].update(
            whenUnsatisfiable="ScheduleAnyway"
        ),
        ("consistency",),
    ),
    (
        "an autoscaler that cannot add pods",
        lambda d: _one(d, "HorizontalPodAutoscaler", "payment")["spec"].update(maxReplicas=2),
        ("consistency",),
    ),
    (
        "the data dir comes back",
        lambda d: _container(d, "catalog")["env"].append(
            {"name": "SHOPMESH_DATA_DIR", "value": "/var/lib/shopmesh"}
        ),
        ("consistency",),
    ),
    (
        "a pod reads another service's Secret",
        lambda d: _env(d, "catalog", "PGPASSWORD")["valueFrom"]["secretKeyRef"].update(
            name="postgres-order"
        ),
        ("consistency",),
    ),
    (
        "a pod opens another service's database",
        lambda d: _env(d, "inventory", "PGDATABASE").update(value="order"),
        ("consistency",),
    ),
    (
        "a conninfo that refers to a variable defined after it",
        _conninfo_before_its_password,
        ("consistency",),
    ),
    (
        "TLS without verifying the server",
        lambda d: _env(d, "order", "PGSSLMODE").update(value="require"),
        ("consistency",),
    ),
    (
        "a pod connects to the standbys' Service",
        lambda d: _env(d, "order", "PGHOST").update(value="shop-postgres-ro.shop.svc"),
        ("consistency",),
    ),
    (
        "the CA's private key mounted into a pod",
        lambda d: _pod(d, "payment")["volumes"][1]["secret"]["items"].append(
            {"key": "ca.key", "path": "ca.key"}
        ),
        ("consistency",),
    ),
    (
        "a database without its Database object",
        _drop_document("Database", "payment-gateway"),
        ("consistency",),
    ),
    (
        "a Database owned by another service's role",
        lambda d: _one(d, "Database", "payment-gateway")["spec"].update(owner="payment"),
        ("consistency",),
    ),
    (
        "deleting a Database object drops the data",
        lambda d: _one(d, "Database", "order")["spec"].update(databaseReclaimPolicy="delete"),
        ("consistency",),
    ),
    (
        "a role that cannot log in",
        lambda d: _role(d, "inventory").update(login=False),
        ("consistency",),
    ),
    (
        "a role with powers it does not need",
        lambda d: _role(d, "catalog").update(superuser=True),
        ("consistency",),
    ),
    (
        "pg_hba lets a role in from any pod",
        _replace_hba(
            "hostssl catalog catalog ${podselector:catalog} scram-sha-256",
            "hostssl catalog catalog all scram-sha-256",
        ),
        ("consistency",),
    ),
    (
        "pg_hba lets a role in without TLS",
        _replace_hba(
            "hostssl order order ${podselector:order} scram-sha-256",
            "host order order ${podselector:order} scram-sha-256",
        ),
        ("consistency",),
    ),
    (
        "pg_hba lets other roles into a database",
        _replace_hba("host payment all all reject", None),
        ("consistency",),
    ),
    (
        "pg_hba lets a role into other databases",
        _replace_hba("host all payment_gateway all reject", None),
        ("consistency",),
    ),
    (
        "pg_hba lets another service's pods in",
        lambda d: _cluster_spec(d)["podSelectorRefs"][0]["selector"].update(matchLabels={}),
        ("consistency",),
    ),
    (
        "a Cluster of two instances",
        lambda d: _cluster_spec(d).update(instances=2),
        ("consistency",),
    ),
    (
        "instances that may share a node",
        lambda d: _cluster_spec(d)["affinity"].update(podAntiAffinityType="preferred"),
        ("consistency",),
    ),
    (
        "commits that a failover may lose",
        lambda d: _cluster_spec(d)["postgresql"].pop("synchronous"),
        ("consistency",),
    ),
    (
        "instances with Istio sidecars",
        lambda d: _cluster_spec(d)["inheritedMetadata"]["labels"].pop("sidecar.istio.io/inject"),
        ("consistency",),
    ),
    (
        "a connection limit below the service's pods",
        lambda d: _role(d, "order").update(connectionLimit=50),
        ("consistency",),
    ),
    (
        "max_connections below the roles' limits",
        lambda d: _cluster_spec(d)["postgresql"]["parameters"].update(max_connections="300"),
        ("consistency",),
    ),
    (
        "an autoscaler ceiling raised without the connection budget",
        lambda d: _one(d, "HorizontalPodAutoscaler", "order")["spec"].update(maxReplicas=20),
        ("consistency",),
    ),
    (
        "no WAL archive",
        lambda d: _cluster_spec(d)["plugins"][0].update(isWALArchiver=False),
        ("consistency",),
    ),
    (
        "a ScheduledBackup by a method the Cluster does not configure",
        lambda d: _one(d, "ScheduledBackup", "shop-postgres-daily")["spec"].update(
            method="volumeSnapshot"
        ),
        ("consistency",),
    ),
    (
        "a role whose Secret nobody creates",
        lambda d: _role(d, "order")["passwordSecret"].update(name="order-password"),
        ("secrets",),
    ),
    (
        "an ObjectStore nobody creates",
        lambda d: _cluster_spec(d)["plugins"][0]["parameters"].update(barmanObjectName="backups"),
        ("secrets",),
    ),
    (
        "typo'd Cluster field",
        lambda d: _rename(_cluster_spec(d), "instances", "instanses"),
        ("schema",),
    ),
    (
        "wrong ScheduledBackup method enum",
        lambda d: _one(d, "ScheduledBackup", "shop-postgres-daily")["spec"].update(
            method="plugins"
        ),
        ("schema", "consistency"),
    ),
    (
        "role connection limit of the wrong type",
        lambda d: _role(d, "catalog").update(connectionLimit="110"),
        ("schema",),
    ),
    (
        "a database named postgres (CEL rule)",
        lambda d: _one(d, "Database", "catalog")["spec"].update(name="postgres"),
        ("schema", "consistency"),
    ),
    (
        "no synchronous standby (CEL rule)",
        lambda d: _cluster_spec(d)["postgresql"]["synchronous"].update(number=0),
        ("schema", "consistency"),
    ),
]


def _problems(check: str, documents: Documents, schema_dir: pathlib.Path) -> list[str]:
    if check == "schema":
        return [
            p for d in documents if is_custom_resource(d) for p in schema_problems(d, schema_dir)
        ]
    if check == "model":
        return [p for d in documents if is_istio(d) for p in model_problems(d)]
    if check == "kubernetes":
        return [p for d in documents if not is_custom_resource(d) for p in kubernetes_problems(d)]
    if check == "secrets":
        return secret_problems(documents, (ISTIO_DIR / "README.md").read_text())
    found = []
    running = as_running(documents)
    for function in (
        istio_consistency.CHECKS
        + database_consistency.CHECKS
        + progressive_delivery_consistency.CHECKS
    ):
        try:
            found += function(running)
        except (KeyError, ValueError) as error:  # a check that cannot even read it objects too
            found.append(f"{function.__name__}: {error!r}")
    return found


@pytest.mark.parametrize(("broken", "mutate", "checks"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_broken_copy_is_caught(rendered, schema_dir, broken, mutate, checks) -> None:
    # Unbroken, the same overlay passes every check (test_istio_validation/_consistency).
    documents = rendered["base"]
    mutate(documents)
    for check in checks:
        assert _problems(check, documents, schema_dir), f"{check} missed: {broken}"


def _canary(documents: Documents, service: str) -> dict[str, Any]:
    return _one(documents, "Canary", service)["spec"]


def _metric(documents: Documents, service: str, name: str) -> dict[str, Any]:
    (metric,) = [m for m in _canary(documents, service)["analysis"]["metrics"] if m["name"] == name]
    return metric


def _add_service_back(documents: Documents) -> None:
    documents.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "inventory", "namespace": "shop"},
            "spec": {
                "selector": {"app": "inventory"},
                "ports": [{"name": "grpc", "port": 50051, "targetPort": "grpc"}],
            },
        }
    )


def _gateway_route_around_flagger(documents: Documents) -> None:
    (route,) = [
        r
        for r in _one(documents, "VirtualService", "ingress")["spec"]["http"]
        if r["name"] == "catalog.GetProduct"
    ]
    del route["delegate"]
    route["route"] = [{"destination": {"host": "catalog.shop.svc.cluster.local"}}]


# (what is broken in overlays/progressive-delivery, how, the checks that must report it)
PROGRESSIVE_MUTATIONS: list[tuple[str, Callable[[Documents], None], tuple[str, ...]]] = [
    (
        # Flagger's primary pods are `app: payment-primary`: deny-all answers them.
        "authorization selecting `app` misses Flagger's primary",
        lambda d: _one(d, "AuthorizationPolicy", "payment-callers")["spec"].update(
            selector={"matchLabels": {"app": "payment"}}
        ),
        ("consistency",),
    ),
    (
        "pg_hba admitting pods by `app` refuses Flagger's primary",
        lambda d: _cluster_spec(d)["podSelectorRefs"][0]["selector"].update(
            matchLabels={"app": "catalog"}
        ),
        ("consistency",),
    ),
    (
        "no disruption budget for the primary",
        _drop_document("PodDisruptionBudget", "catalog-primary"),
        ("consistency",),
    ),
    (
        "the primary's budget also counts the release's pods",
        lambda d: _one(d, "PodDisruptionBudget", "order-primary")["spec"].update(
            selector={"matchLabels": {"app.kubernetes.io/name": "order"}}
        ),
        ("consistency",),
    ),
    (
        "a Canary on a Deployment that does not exist",
        lambda d: _canary(d, "inventory")["targetRef"].update(name="inventroy"),
        ("consistency",),
    ),
    (
        "an error threshold off the policy",
        lambda d: _metric(d, "payment", "error-percent")["thresholdRange"].update(max=1),
        ("consistency",),
    ),
    (
        "a p99 threshold off the policy",
        lambda d: _metric(d, "catalog", "latency-p99")["thresholdRange"].update(max=1000),
        ("consistency",),
    ),
    (
        "no minimum call count",
        lambda d: _canary(d, "order")["analysis"].update(
            metrics=[
                m for m in _canary(d, "order")["analysis"]["metrics"] if m["name"] != "requests"
            ]
        ),
        ("consistency",),
    ),
    (
        "steps off the policy",
        lambda d: _canary(d, "catalog")["analysis"].update(stepWeights=[10, 50]),
        ("consistency",),
    ),
    (
        "a rollback only after five failed windows",
        lambda d: _canary(d, "order")["analysis"].update(threshold=5),
        ("consistency",),
    ),
    (
        "an analysis window other than the policy's",
        lambda d: _canary(d, "payment")["analysis"].update(interval="2m"),
        ("consistency",),
    ),
    (
        # Flagger's builtin request-success-rate: gRPC errors are HTTP 200.
        "errors counted by HTTP status",
        lambda d: _one(d, "MetricTemplate", "error-percent")["spec"].update(
            query='sum(rate(istio_requests_total{reporter="destination",'
            ' destination_workload_namespace="{{ namespace }}",'
            ' destination_workload="{{ target }}", response_code=~"5.*"}[{{ interval }}]))'
        ),
        ("consistency",),
    ),
    (
        "the overlay sets the release's replicas",
        lambda d: _one(d, "Deployment", "catalog")["spec"].update(replicas=2),
        ("consistency",),
    ),
    (
        "a route delegating to a VirtualService nobody makes",
        lambda d: _one(d, "VirtualService", "catalog-rpcs")["spec"]["http"][0].update(
            delegate={"name": "catalogue", "namespace": "shop"}
        ),
        ("consistency",),
    ),
    (
        "a gateway route around Flagger's weights",
        _gateway_route_around_flagger,
        ("consistency",),
    ),
    (
        "Flagger's DestinationRules without mutual TLS",
        lambda d: _canary(d, "inventory")["service"]["trafficPolicy"].update(
            tls={"mode": "DISABLE"}
        ),
        ("consistency",),
    ),
    (
        "Flagger's VirtualService claiming the host (no delegation)",
        lambda d: _canary(d, "catalog")["service"].pop("delegation"),
        ("consistency",),
    ),
    ("the base's Service beside Flagger's", _add_service_back, ("consistency",)),
    (
        "a PodMonitor selecting `app`, which Flagger rewrites",
        lambda d: _one(d, "PodMonitor", "shop")["spec"].update(
            selector={"matchLabels": {"app": "catalog"}}
        ),
        ("consistency",),
    ),
    (
        "a scrape interval the window cannot hold two of",
        lambda d: _one(d, "PodMonitor", "shop")["spec"]["podMetricsEndpoints"][0].update(
            interval="45s"
        ),
        ("consistency",),
    ),
    (
        # The Canary CRD has no connectionPool.tcp: the API server would drop it.
        "a TCP pool in a Canary",
        lambda d: _canary(d, "order")["service"]["trafficPolicy"]["connectionPool"].update(
            tcp={"maxConnections": 100}
        ),
        ("schema",),
    ),
    (
        "typo'd Canary field",
        lambda d: _rename(_canary(d, "order"), "analysis", "analyis"),
        ("schema",),
    ),
    (
        "typo'd PodMonitor field",
        lambda d: _rename(
            _one(d, "PodMonitor", "shop")["spec"], "podMetricsEndpoints", "endpoints"
        ),
        ("schema",),
    ),
]


@pytest.mark.parametrize(
    ("broken", "mutate", "checks"), PROGRESSIVE_MUTATIONS, ids=[m[0] for m in PROGRESSIVE_MUTATIONS]
)
def test_broken_progressive_delivery_is_caught(
    rendered, schema_dir, broken, mutate, checks
) -> None:
    documents = rendered["overlays/progressive-delivery"]
    mutate(documents)
    for check in checks:
        assert _problems(check, documents, schema_dir), f"{check} missed: {broken}"


def test_kubernetes_validate_command_rejects_a_typo(rendered, tmp_path) -> None:
    documents = rendered["base"]
    _rename(_container(documents, "catalog"), "livenessProbe", "livenesProbe")
    stream = tmp_path / "broken.yaml"
    stream.write_text(yaml.safe_dump_all([d for d in documents if not is_custom_resource(d)]))
    command = [str(pathlib.Path(sys.executable).parent / "kubernetes-validate"), "--strict"]
    result = subprocess.run(
        [*command, "--quiet", "--kubernetes-version", KUBERNETES_VERSION, str(stream)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "livenesProbe" in result.stdout + result.stderr
