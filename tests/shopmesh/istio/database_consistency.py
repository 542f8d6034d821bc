"""Rendered istio/ against the databases of shopmesh/topology.yaml and what the services need.

The rules, each in its own terms, reading only the rendered YAML (and istio/README.md
for what the platform team creates by hand):

- stateless pods: no volume claim, no node pinning, spread over nodes, autoscaled;
- one CloudNativePG Cluster that survives a node: 3 instances on separate nodes,
  synchronous commit, outside the mesh's sidecars, backed up with WAL archiving;
- per database: a Database owned by a role of its name, a login role whose
  password is in a Secret, and pg_hba letting only that role in, only from its
  service's pods, only over TLS;
- per pod: each database's connection settings, resolved as Kubernetes expands the
  env and libpq reads it, name the primary's Service, that database, the user and
  password of that database's own Secret and a verified TLS connection;
- connection limits cover every pod that can run at once: each Deployment (Flagger's
  primary and the release under analysis alike) at its autoscaler's ceiling plus a
  rollout's surge;
- every Secret (and the backup ObjectStore) a manifest names exists: rendered,
  made by the operator, or created by a command in istio/README.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from psycopg import conninfo

from services.runtime.postgres import CONNECTIONS_PER_DATABASE
from shopmesh import topology

from .istio_consistency import find, pod_labels, selects, service_of

__all__ = [
    "CHECKS",
    "backup_problems",
    "budget_problems",
    "connection_problems",
    "connection_settings",
    "database_problems",
    "hba_method",
    "readme_objects",
    "secret_problems",
    "stateless_problems",
]

CNPG = "postgresql.cnpg.io/v1"
POSTGRES_PORT = "5432"
SPREAD_KEY = "kubernetes.io/hostname"
# libpq's environment variables for the connection keys the checks look at.
LIBPQ_ENV = {
    "PGHOST": "host",
    "PGPORT": "port",
    "PGDATABASE": "dbname",
    "PGUSER": "user",
    "PGPASSWORD": "password",
    "PGSSLMODE": "sslmode",
    "PGSSLROOTCERT": "sslrootcert",
    "PGTARGETSESSIONATTRS": "target_session_attrs",
}
# Stands for a value Kubernetes takes from a Secret: no quote, backslash or space,
# so it survives conninfo parsing as a literal password would that README generates.
_SECRET_TOKEN = "@@secret:{name}/{key}@@"
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
Documents = list[dict[str, Any]]


def secret_value(name: str, key: str) -> str:
    """How connection_settings() shows a value read from Secret `name`, key `key`."""
    return _SECRET_TOKEN.format(name=name, key=key)


def _pod(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


# --- stateless pods -------------------------------------------------------------------


def stateless_problems(documents: Documents) -> list[str]:
    """Any node may run any pod, one node's loss takes a share of them, HPA adds pods."""
    problems = [
        f"PersistentVolumeClaim {d['metadata']['name']}: pods of the shop keep no volume"
        for d in find(documents, "PersistentVolumeClaim")
    ]
    deployments = find(documents, "Deployment")
    for deployment in deployments:
        where = f"Deployment {deployment['metadata']['name']}"
        pod = _pod(deployment)
        for volume in pod.get("volumes", []):
            if not {"emptyDir", "secret"} & set(volume):
                problems.append(f"{where}: volume {volume['name']} keeps state beyond the pod")
        mounts = [m for c in pod["containers"] for m in c.get("volumeMounts", [])]
        secret_volumes = {v["name"] for v in pod.get("volumes", []) if "secret" in v}
        for mount in mounts:
            if mount["name"] in secret_volumes and not mount.get("readOnly"):
                problems.append(f"{where}: secret volume {mount['name']} mounted writable")
        affinity = pod.get("affinity", {})
        if affinity.get("podAffinity") or pod.get("nodeSelector") or pod.get("nodeName"):
            problems.append(f"{where}: pinned to nodes (affinity, nodeSelector or nodeName)")
        if "requiredDuringSchedulingIgnoredDuringExecution" in affinity.get("nodeAffinity", {}):
            problems.append(f"{where}: pinned to nodes by a required node affinity")
        # Counting this Deployment's pods, and no other's (Flagger's primary included).
        spread = [
            c
            for c in pod.get("topologySpreadConstraints", [])
            if c["topologyKey"] == SPREAD_KEY
            and c["maxSkew"] == 1
            and c["whenUnsatisfiable"] == "DoNotSchedule"
            and [d for d in deployments if selects(c.get("labelSelector"), pod_labels(d))]
            == [deployment]
        ]
        if not spread:
            problems.append(f"{where}: pods not spread over nodes (maxSkew 1, DoNotSchedule)")
        for container in pod["containers"]:
            names = {e["name"] for e in container.get("env", [])}
            if "SHOPMESH_DATA_DIR" in names:
                problems.append(f"{where}: still sets SHOPMESH_DATA_DIR")
    for service in topology.load().services:
        autoscalers = [
            h
            for h in find(documents, "HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"]
            == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
        ]
        if len(autoscalers) != 1:
            problems.append(f"{service}: {len(autoscalers)} autoscalers on its Deployment (want 1)")
        elif autoscalers[0]["spec"]["maxReplicas"] <= autoscalers[0]["spec"].get("minReplicas", 1):
            problems.append(f"{service}: the autoscaler cannot add pods")
    return problems


# --- the Cluster, its roles and Databases ----------------------------------------------


def _cluster(documents: Documents) -> dict[str, Any]:
    (cluster,) = [d for d in find(documents, "Cluster") if d["apiVersion"] == CNPG]
    return cluster


def roles(cluster: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {role["name"]: role for role in cluster["spec"].get("managed", {}).get("roles", [])}


def _cluster_problems(cluster: dict[str, Any]) -> Iterator[str]:
    spec = cluster["spec"]
    where = f"Cluster {cluster['metadata']['name']}"
    if spec.get("instances", 1) < 3:
        yield f"{where}: {spec.get('instances', 1)} instances (a primary and 2 standbys needed)"
    affinity = spec.get("affinity", {})
    if (
        affinity.get("enablePodAntiAffinity") is False
        or affinity.get("podAntiAffinityType") != "required"
        or affinity.get("topologyKey") != SPREAD_KEY
    ):
        yield f"{where}: instances may share a node (want required anti-affinity on {SPREAD_KEY})"
    if spec.get("enablePDB") is False:
        yield f"{where}: no PodDisruptionBudget: a drain may stop every instance"
    synchronous = spec.get("postgresql", {}).get("synchronous", {})
    if synchronous.get("number", 0) < 1 or synchronous.get("dataDurability") == "preferred":
        yield f"{where}: commits are not on a standby before they return (failover may lose them)"
    inherited = spec.get("inheritedMetadata", {}).get("labels", {})
    if inherited.get("sidecar.istio.io/inject") != "false":
        yield f"{where}: instances get Istio sidecars (operator and replication bypass the mesh)"
    if spec.get("enableSuperuserAccess"):
        yield f"{where}: the superuser can log in over the network"


def database_problems(documents: Documents) -> list[str]:
    """The Cluster, and per topology database a Database, its owning role and pg_hba."""
    cluster = _cluster(documents)
    problems = list(_cluster_problems(cluster))
    name = cluster["metadata"]["name"]
    wanted = topology.load().databases
    cluster_roles = roles(cluster)
    for role in sorted(set(cluster_roles) - set(wanted)):
        problems.append(f"role {role}: no database of the topology")
    databases = [d for d in find(documents, "Database") if d["apiVersion"] == CNPG]
    for database in databases:
        if database["spec"]["name"] not in wanted:
            problems.append(f"Database {database['spec']['name']}: not in the topology")
    for database in wanted:
        found = [d for d in databases if d["spec"]["name"] == database]
        if len(found) != 1:
            problems.append(f"database {database}: {len(found)} Database objects (want 1)")
        for spec in (d["spec"] for d in found):
            if spec["cluster"]["name"] != name or spec["owner"] != database:
                problems.append(f"database {database}: not owned by role {database} in {name}")
            if spec.get("ensure", "present") != "present":
                problems.append(f"database {database}: ensure {spec['ensure']}")
            if spec.get("databaseReclaimPolicy", "retain") != "retain":
                problems.append(f"database {database}: deleting the object drops the data")
        role = cluster_roles.get(database)
        if role is None:
            problems.append(f"database {database}: no managed role {database}")
            continue
        if not role.get("login") or role.get("ensure", "present") != "present":
            problems.append(f"role {database}: cannot log in")
        if not role.get("passwordSecret", {}).get("name"):
            problems.append(f"role {database}: no password Secret")
        powers = [
            p
            for p in ("superuser", "createdb", "createrole", "replication", "bypassrls")
            if role.get(p)
        ]
        if powers:
            problems.append(f"role {database}: more than it needs: {powers}")
    problems += list(_hba_problems(cluster, documents))
    return problems


# --- pg_hba ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    """Who connects: the database and user asked for, the pod's labels (None: no pod of
    the namespace, e.g. another namespace), and whether the connection uses TLS."""

    database: str
    user: str
    pod_labels: dict[str, str] | None
    tls: bool


def _selects(selector: dict[str, Any], pod_labels: dict[str, str]) -> bool:
    if set(selector) - {"matchLabels"}:
        raise ValueError(f"pod selector {selector}: only matchLabels is understood here")
    return all(pod_labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _address_matches(address: str, cluster: dict[str, Any], client: Client) -> bool:
    if address == "all":
        return True
    reference = re.fullmatch(r"\$\{podselector:([^}]+)\}", address)
    if reference is None:
        raise ValueError(f"pg_hba address {address!r}: only all and ${{podselector:...}} here")
    refs = {r["name"]: r["selector"] for r in cluster["spec"].get("podSelectorRefs", [])}
    if reference.group(1) not in refs:
        raise ValueError(f"pg_hba names an undefined pod selector {reference.group(1)}")
    return client.pod_labels is not None and _selects(refs[reference.group(1)], client.pod_labels)


def hba_method(cluster: dict[str, Any], client: Client) -> str:
    """The method of the first pg_hba rule of the Cluster that matches; CloudNativePG
    ends the file with `host all all all scram-sha-256`, which is what no match means."""
    for line in cluster["spec"].get("postgresql", {}).get("pg_hba", []):
        kind, database, user, address, method, *_ = line.split()
        if kind == "hostssl" and not client.tls:
            continue
        if kind not in ("host", "hostssl"):
            raise ValueError(f"pg_hba rule {line!r}: only host and hostssl rules here")
        if database not in ("all", client.database) or user not in ("all", client.user):
            continue
        if _address_matches(address, cluster, client):
            return method
    return "scram-sha-256"


def _hba_problems(cluster: dict[str, Any], documents: Documents) -> Iterator[str]:
    """A role gets in only to its own database, from its service's pods, over TLS, with
    its password, and nobody else gets into the shop's databases. Tried: every role of
    the shop, the operator's default application role and anyone else; into every
    database of the shop, the operator's default one and the server's own; from the
    pods of every Deployment (Flagger's primary too) and from outside the namespace;
    TLS or not."""
    shop = topology.load().databases
    users = [*shop, "app", "someone_else"]
    databases = [*shop, "app", "postgres", "template1"]
    sources = [(service_of(d), pod_labels(d)) for d in find(documents, "Deployment")]
    for database in databases:
        owner = shop[database][0] if database in shop else None
        for user in users:
            for source, labels in [*sources, (None, None)]:
                for tls in (True, False):
                    client = Client(database, user, labels, tls)
                    method = hba_method(cluster, client)
                    own = user == database and source == owner and tls
                    if own and method != "scram-sha-256":
                        yield f"pg_hba: {database}'s own pods get {method} for role {user}"
                    elif not own and (user in shop or database in shop) and method != "reject":
                        yield f"pg_hba: {client} is not rejected ({method})"


# --- what a pod connects with ----------------------------------------------------------


def _expanded(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: $(VAR) expands variables
    defined earlier in the list, $$ is a literal $, anything else stays as written."""
    env: dict[str, str] = {}
    for entry in container.get("env", []):
        if "valueFrom" in entry:
            ref = entry["valueFrom"].get("secretKeyRef")
            env[entry["name"]] = secret_value(ref["name"], ref["key"]) if ref else "<field>"
            continue

        def expand(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            return env.get(match.group(1), match.group(0))

        env[entry["name"]] = _REFERENCE.sub(expand, entry.get("value", ""))
    return env


def connection_settings(container: dict[str, Any], variable: str) -> dict[str, str]:
    """The libpq connection keys one database's connection ends up with: the variable's
    conninfo (URL or key=value), and for the keys it leaves out, libpq's PG* variables."""
    env = _expanded(container)
    settings = conninfo.conninfo_to_dict(env.get(variable, ""))
    for name, key in LIBPQ_ENV.items():
        if key not in settings and name in env:
            settings[key] = env[name]
    return {k: str(v) for k, v in settings.items()}


def _mounted_ca(pod: dict[str, Any], container: dict[str, Any], path: str, ca_secret: str) -> bool:
    """`path` is a file of a read-only volume holding `ca_secret`'s ca.crt (and not its key)."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        prefix = mount["mountPath"].rstrip("/") + "/"
        secret = volumes.get(mount["name"], {}).get("secret")
        if not secret or not path.startswith(prefix) or secret["secretName"] != ca_secret:
            continue
        items = {i["path"]: i["key"] for i in secret.get("items", [])}
        return items.get(path.removeprefix(prefix)) == "ca.crt" and "ca.key" not in items.values()
    return False


def connection_problems(documents: Documents) -> list[str]:
    """Each pod's settings for each of its databases name that database, its own role's
    Secret, the primary's Service and a verified TLS connection; no other Secret."""
    problems = []
    cluster = _cluster(documents)
    name, namespace = cluster["metadata"]["name"], cluster["metadata"]["namespace"]
    cluster_roles = roles(cluster)
    primary = f"{name}-rw.{namespace}.svc"
    for deployment in find(documents, "Deployment"):
        where = f"Deployment {deployment['metadata']['name']}"
        service = service_of(deployment)
        pod = _pod(deployment)
        (container,) = pod["containers"]
        own_secrets = set()
        for database, variable in topology.load().databases_of(service).items():
            secret = cluster_roles.get(database, {}).get("passwordSecret", {}).get("name")
            own_secrets.add(secret)
            settings = connection_settings(container, variable)
            wanted = {
                "host": primary,
                "port": POSTGRES_PORT,
                "dbname": database,
                "user": secret_value(secret, "username"),
                "password": secret_value(secret, "password"),
                "sslmode": "verify-full",
                "target_session_attrs": "read-write",
            }
            for key, value in wanted.items():
                if settings.get(key) != value:
                    problems.append(
                        f"{where}: {variable} {key} is {settings.get(key)!r}, not {value!r}"
                    )
            root = settings.get("sslrootcert", "")
            if not _mounted_ca(pod, container, root, f"{name}-ca"):
                problems.append(
                    f"{where}: {variable} sslrootcert {root!r} is not {name}-ca's ca.crt alone"
                )
        used = {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        for secret in sorted(used - own_secrets):
            problems.append(f"{where}: reads Secret {secret}, not one of {service}'s databases")
    return problems


def _pods_at_most(documents: Documents, deployment: dict[str, Any]) -> int:
    name = deployment["metadata"]["name"]
    ceilings = [
        h["spec"]["maxReplicas"]
        for h in find(documents, "HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        and h["spec"]["scaleTargetRef"]["name"] == name
    ]
    pods = max([deployment["spec"].get("replicas", 1), *ceilings])
    surge = deployment["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", "25%")
    if not isinstance(surge, int):
        raise ValueError(f"Deployment {name}: maxSurge {surge!r} (a count is needed here)")
    return pods + surge


def budget_problems(documents: Documents) -> list[str]:
    """Every pod that can run at once gets its connections: per role and in total."""
    problems = []
    cluster = _cluster(documents)
    cluster_roles = roles(cluster)
    for database, (service, _) in topology.load().databases.items():
        pods = sum(
            _pods_at_most(documents, d)
            for d in find(documents, "Deployment")
            if service_of(d) == service
        )
        # SHOPMESH_WORKERS processes per pod (1 when unset) each open their own pool.
        need = pods * CONNECTIONS_PER_DATABASE
        limit = cluster_roles.get(database, {}).get("connectionLimit", -1)
        if 0 <= limit < need:
            problems.append(f"role {database}: connectionLimit {limit} < {need} ({pods} pods)")
    limits = [r.get("connectionLimit", -1) for r in cluster_roles.values()]
    parameters = cluster["spec"].get("postgresql", {}).get("parameters", {})
    maximum = int(parameters.get("max_connections", 100))
    if min(limits, default=-1) < 0 or maximum <= sum(limits):
        problems.append(f"max_connections {maximum} does not exceed the roles' limits {limits}")
    for deployment in find(documents, "Deployment"):
        (container,) = _pod(deployment)["containers"]
        workers = _expanded(container).get("SHOPMESH_WORKERS", "1")
        if workers != "1":
            problems.append(f"Deployment {deployment['metadata']['name']}: {workers} workers")
    return problems


# --- backups ---------------------------------------------------------------------------


def backup_problems(documents: Documents) -> list[str]:
    """A ScheduledBackup of the Cluster by a method the Cluster configures, and WAL
    archived continuously (so a restore can reach any point in time, not only the
    last base backup)."""
    cluster = _cluster(documents)
    spec = cluster["spec"]
    archivers = [p["name"] for p in spec.get("plugins", []) if p.get("isWALArchiver")]
    in_tree = "barmanObjectStore" in spec.get("backup", {})
    problems = []
    if not archivers and not in_tree:
        problems.append(f"Cluster {cluster['metadata']['name']}: no WAL archive")
    backups = [
        b
        for b in find(documents, "ScheduledBackup")
        if b["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
    ]
    if not backups:
        problems.append("no ScheduledBackup of the Cluster")
    for backup in backups:
        method = backup["spec"].get("method", "barmanObjectStore")
        plugin = backup["spec"].get("pluginConfiguration", {}).get("name")
        usable = {
            "plugin": plugin in archivers,
            "barmanObjectStore": in_tree,
            "volumeSnapshot": "volumeSnapshot" in spec.get("backup", {}),
        }.get(method, False)
        if not usable:
            problems.append(f"ScheduledBackup {backup['metadata']['name']}: method {method} unset")
    return problems


# --- what the platform team creates ------------------------------------------------------


def readme_objects(readme: str) -> tuple[dict[str, dict[str, str]], set[str]]:
    """(Secret name -> {type, username, password}, ObjectStore names) istio/README.md
    has the platform team create: `kubectl create secret generic` commands, and the
    ObjectStore documents of its YAML blocks."""
    text = readme.replace("\\\n", " ")
    secrets = {}
    for line in text.splitlines():
        if "create secret generic" not in line:
            continue
        name = line.split("create secret generic", 1)[1].split()[0]
        options = dict(re.findall(r"--(type|from-literal=\w+)=(\"[^\"]*\"|\S+)", line))
        secrets[name] = {
            "type": options.get("type", "Opaque"),
            "username": options.get("from-literal=username", ""),
            "password": options.get("from-literal=password", "").strip('"'),
        }
    stores = set()
    for block in re.findall(r"```yaml\n(.*?)```", readme, flags=re.S):
        for document in yaml.safe_load_all(block):
            if isinstance(document, dict) and document.get("kind") == "ObjectStore":
                stores.add(document["metadata"]["name"])
    return secrets, stores


def secret_problems(documents: Documents, readme: str) -> list[str]:
    """Every Secret a manifest names is rendered, made by the operator (the Cluster's
    CA), or created by istio/README.md; role Secrets are basic-auth with the role's
    name and a hex password (safe inside a quoted conninfo value)."""
    cluster = _cluster(documents)
    created, stores = readme_objects(readme)
    rendered = {d["metadata"]["name"] for d in find(documents, "Secret")}
    by_operator = {f"{cluster['metadata']['name']}-ca"}
    named: dict[str, set[str]] = {}

    def name(secret: str, user: str) -> None:
        named.setdefault(secret, set()).add(user)

    for role in roles(cluster).values():
        name(role["passwordSecret"]["name"], f"role {role['name']}")
    for deployment in find(documents, "Deployment"):
        user = f"Deployment {deployment['metadata']['name']}"
        pod = _pod(deployment)
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                name(volume["secret"]["secretName"], user)
        for container in pod["containers"]:
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    name(ref["name"], user)
    problems = [
        f"Secret {secret} ({', '.join(sorted(users))}): neither rendered, nor the"
        " operator's, nor in istio/README.md"
        for secret, users in sorted(named.items())
        if secret not in rendered | by_operator | set(created)
    ]
    for role in roles(cluster).values():
        secret = created.get(role["passwordSecret"]["name"])
        if secret is None:
            continue
        if secret["type"] != "kubernetes.io/basic-auth" or secret["username"] != role["name"]:
            problems.append(f"README: Secret for role {role['name']} is {secret}")
        if not re.fullmatch(r"\$\(openssl rand -hex \d+\)", secret["password"]):
            problems.append(f"README: role {role['name']}'s password is not generated as hex")
    for plugin in cluster["spec"].get("plugins", []):
        store = plugin.get("parameters", {}).get("barmanObjectName")
        if store and store not in stores:
            problems.append(f"ObjectStore {store}: not in istio/README.md")
    return problems


# Every check above that takes only the documents: what an overlay must pass.
CHECKS = (
    stateless_problems,
    database_problems,
    connection_problems,
    budget_problems,
    backup_problems,
)
