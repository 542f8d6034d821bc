"""The services' state on Kubernetes: stateless pods, CloudNativePG, connections, Secrets.

Every overlay passes database_consistency.CHECKS in test_istio_consistency; these
tests pin the parts that need more than the rendered documents, and the checks'
own behaviour."""

from __future__ import annotations

from services.runtime.postgres import CONNECTIONS_PER_DATABASE
from shopmesh import topology
from shopmesh.istio.manifests import ISTIO_DIR

from .database_consistency import (
    Client,
    connection_settings,
    hba_method,
    readme_objects,
    secret_problems,
    secret_value,
)
from .istio_consistency import find, pod_labels


def test_every_secret_and_store_the_manifests_name_is_created(rendered) -> None:
    readme = (ISTIO_DIR / "README.md").read_text()
    secrets, stores = readme_objects(readme)
    assert {f"postgres-{d.replace('_', '-')}" for d in topology.load().databases} <= set(secrets)
    assert stores == {"shop-postgres-backups"}
    for overlay, documents in rendered.items():
        assert secret_problems(documents, readme) == [], overlay
        assert find(documents, "Secret") == [], "no Secret is committed"


def test_a_secret_missing_from_readme_is_reported(rendered) -> None:
    readme = (ISTIO_DIR / "README.md").read_text()
    misspelt = readme.replace("generic postgres-order ", "generic postgres-orders ")
    assert misspelt != readme
    problems = secret_problems(rendered["base"], misspelt)
    assert problems == [
        "Secret postgres-order (Deployment order, role order): neither rendered,"
        " nor the operator's, nor in istio/README.md"
    ]


def test_only_a_service_s_own_pods_reach_its_database(running) -> None:
    documents = running["overlays/progressive-delivery"]
    (cluster,) = find(documents, "Cluster")
    # Flagger's primary of one service and the release of the other.
    (order_pod,) = [pod_labels(d) for d in find(documents, "Deployment", "order-primary")]
    (payment_pod,) = [pod_labels(d) for d in find(documents, "Deployment", "payment")]
    assert hba_method(cluster, Client("order", "order", order_pod, tls=True)) == "scram-sha-256"
    assert hba_method(cluster, Client("order", "order", order_pod, tls=False)) == "reject"
    assert hba_method(cluster, Client("order", "order", payment_pod, tls=True)) == "reject"
    assert hba_method(cluster, Client("order", "order", None, tls=True)) == "reject"
    # payment's pods open both of its databases, each with its own role only.
    for database in ("payment", "payment_gateway"):
        own = Client(database, database, payment_pod, tls=True)
        assert hba_method(cluster, own) == "scram-sha-256"
    assert hba_method(cluster, Client("payment", "payment_gateway", payment_pod, True)) == "reject"
    assert hba_method(cluster, Client("payment_gateway", "payment", payment_pod, True)) == "reject"


def test_connection_settings_expand_env_as_the_kubelet_does() -> None:
    container = {
        "env": [
            {"name": "PGHOST", "value": "db.example"},
            {"name": "URL", "value": "dbname=x user=$(LATER) password='$(PASS)' port=$$(5432)"},
            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
            {"name": "LATER", "value": "too-late"},
        ]
    }
    settings = connection_settings(container, "URL")
    # Only variables defined earlier expand; $$ is a literal $; unspecified keys
    # come from libpq's PG* variables.
    assert settings["user"] == "$(LATER)"
    assert settings["password"] == "$(PASS)"
    assert settings["port"] == "$(5432)"
    assert settings["host"] == "db.example"
    container["env"].insert(1, container["env"].pop(2))
    assert connection_settings(container, "URL")["password"] == secret_value("s", "password")


def test_connection_limits_cover_the_largest_deployment_the_manifests_allow(running) -> None:
    documents = running["overlays/progressive-delivery"]
    (cluster,) = find(documents, "Cluster")
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    (release,) = find(documents, "HorizontalPodAutoscaler", "order")
    (primary,) = find(documents, "HorizontalPodAutoscaler", "order-primary")
    # During an analysis Flagger's primary and the release each scale to their
    # autoscaler's ceiling, each with a rollout's extra pod.
    pods = release["spec"]["maxReplicas"] + 1 + primary["spec"]["maxReplicas"] + 1
    assert roles["order"]["connectionLimit"] == pods * CONNECTIONS_PER_DATABASE
    parameters = cluster["spec"]["postgresql"]["parameters"]
    assert int(parameters["max_connections"]) > sum(r["connectionLimit"] for r in roles.values())
