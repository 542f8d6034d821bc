"""PostgreSQL on Kubernetes: one CloudNativePG Cluster, a database and role per service.

The databases are shopmesh/topology.yaml's (`databases`), the same ones the local
PostgreSQL creates. What is rendered here:

- the `Cluster`: 3 instances on 3 nodes, quorum synchronous replication (a commit
  is on two instances before the service hears of it), a managed role per
  database whose password CloudNativePG reads from a basic-auth Secret, and
  pg_hba rules that let each role log in only to its own database, over TLS,
  from its own service's pods;
- a `Database` per database, owned by its role;
- a `ScheduledBackup` through the Barman Cloud Plugin, which also archives WAL
  continuously (point-in-time recovery);
- what a service's pod needs to connect: libpq's PG* variables for its own
  database, a conninfo string for any other, the Secret's fields for user and
  password, and the cluster's CA to verify the server.

The Secrets and the backup ObjectStore are not rendered: they hold what only the
platform team has (passwords, a bucket and its credentials). istio/README.md
lists them with the commands that create them; the tests check that list is
complete.

No Pooler: the services keep small pools of their own and reach the primary
through the `-rw` Service directly (istio/README.md says why).
"""

from __future__ import annotations

from typing import Any

from services.runtime.postgres import CONNECTIONS_PER_DATABASE
from shopmesh import topology
from shopmesh.istio.cluster import (
    PART_OF,
    labels,
    metadata,
    namespace,
    pods_at_most,
    service_selector,
)

__all__ = [
    "BACKUP_PLUGIN",
    "CA_MOUNT",
    "CLUSTER",
    "OBJECT_STORE",
    "cluster",
    "connection_env",
    "connection_volume",
    "databases",
    "role_secret",
    "scheduled_backup",
]

CLUSTER = "shop-postgres"
PORT = 5432
# PostgreSQL 18, as the local embedded server; "minimal": no extensions the shop
# does not use. Pin a digest in an overlay for repeatable rollouts.
IMAGE = "ghcr.io/cloudnative-pg/postgresql:18.3-minimal-trixie"
# The Barman Cloud Plugin (the in-tree barmanObjectStore is deprecated since
# CloudNativePG 1.26) and the ObjectStore the platform team creates for it.
BACKUP_PLUGIN = "barman-cloud.cloudnative-pg.io"
OBJECT_STORE = f"{CLUSTER}-backups"
# The operator's CA Secret for the cluster (`<cluster>-ca`); pods mount only ca.crt.
CA_SECRET = f"{CLUSTER}-ca"
CA_MOUNT = "/etc/shopmesh/postgres-ca"
# Connections beyond the services' budgets: the operator's instance manager,
# `kubectl cnpg psql`, a DBA.
ADMIN_CONNECTIONS = 50
# CloudNativePG labels its instance pods with these.
INSTANCE_LABELS = {"cnpg.io/cluster": CLUSTER, "cnpg.io/podRole": "instance"}
API_VERSION = "postgresql.cnpg.io/v1"


def primary_host() -> str:
    """The `-rw` Service: CloudNativePG points it at the current primary, failovers included.

    Spelled `<name>.<namespace>.svc`, a name the operator's server certificate carries,
    so libpq's verify-full accepts it."""
    return f"{CLUSTER}-rw.{namespace()}.svc"


def role_secret(database: str) -> str:
    """The basic-auth Secret with the role's username and password."""
    return f"postgres-{database.replace('_', '-')}"


def _object_name(database: str) -> str:
    return database.replace("_", "-")


def connection_limit(database: str) -> int:
    """Every pod of the owning service at once, each with its pool and health probe."""
    service, _ = topology.load().databases[database]
    return pods_at_most(service) * CONNECTIONS_PER_DATABASE


def _role(database: str) -> dict[str, Any]:
    service, _ = topology.load().databases[database]
    return {
        "name": database,
        "comment": f"shopmesh {service} service: owns the database {database}",
        "ensure": "present",
        "login": True,
        # A runaway service exhausts its own share, not the others'.
        "connectionLimit": connection_limit(database),
        "passwordSecret": {"name": role_secret(database)},
    }


def _pg_hba() -> list[str]:
    """Each role logs in to its own database only, with TLS and its password, and only
    from its service's pods; each database admits no other role. First match wins,
    and CloudNativePG's own rules (replication, local) come before these."""
    rules = []
    for database, (service, _) in topology.load().databases.items():
        rules += [
            f"hostssl {database} {database} ${{podselector:{service}}} scram-sha-256",
            f"host all {database} all reject",
            f"host {database} all all reject",
        ]
    return rules


def _pod_selectors() -> list[dict[str, Any]]:
    # Every pod of a service (Flagger's primary too): the pg_hba rules name them by service.
    return [
        {"name": service, "selector": {"matchLabels": service_selector(service)}}
        for service in sorted(topology.load().services)
    ]


def cluster() -> dict[str, Any]:
    roles = [_role(database) for database in topology.load().databases]
    return {
        "apiVersion": API_VERSION,
        "kind": "Cluster",
        "metadata": metadata(CLUSTER, labels=dict(PART_OF)),
        "spec": {
            "description": "shopmesh: one database and role per service",
            "imageName": IMAGE,
            # A primary and two standbys, each on its own node (required
            # anti-affinity) and spread over zones where the nodes have them.
            "instances": 3,
            "affinity": {
                "enablePodAntiAffinity": True,
                "podAntiAffinityType": "required",
                "topologyKey": "kubernetes.io/hostname",
            },
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": INSTANCE_LABELS},
                }
            ],
            # Node drains evict a standby at a time and never the primary first.
            "enablePDB": True,
            # Updates restart the standbys, then switch the primary over to one.
            "primaryUpdateStrategy": "unsupervised",
            "primaryUpdateMethod": "switchover",
            "enableSuperuserAccess": False,
            # Outside the mesh: the operator (no sidecar) talks to the instances
            # directly, and they replicate with TLS client certificates of their own.
            "inheritedMetadata": {"labels": {"sidecar.istio.io/inject": "false", **PART_OF}},
            "postgresql": {
                "parameters": {
                    "max_connections": str(
                        sum(role["connectionLimit"] for role in roles) + ADMIN_CONNECTIONS
                    ),
                    "shared_buffers": "1GB",
                },
                # A commit returns once one of the two standbys has it too: a failover
                # promotes a standby without losing what a service was told is saved
                # (an order, a captured charge). With both standbys gone, writes wait.
                "synchronous": {"method": "any", "number": 1, "dataDurability": "required"},
                "pg_hba": _pg_hba(),
            },
            "podSelectorRefs": _pod_selectors(),
            "managed": {"roles": roles},
            "storage": {"size": "20Gi"},
            # WAL on its own volume: a burst of writes cannot fill the data volume.
            "walStorage": {"size": "10Gi"},
            # Requests equal limits: Guaranteed QoS, the last pods to be evicted.
            "resources": {
                "requests": {"cpu": "2", "memory": "4Gi"},
                "limits": {"cpu": "2", "memory": "4Gi"},
            },
            "plugins": [
                {
                    "name": BACKUP_PLUGIN,
                    "isWALArchiver": True,
                    "parameters": {"barmanObjectName": OBJECT_STORE},
                }
            ],
        },
    }


def databases(service: str) -> list[dict[str, Any]]:
    """The service's databases, each owned by the role of the same name."""
    return [
        {
            "apiVersion": API_VERSION,
            "kind": "Database",
            "metadata": metadata(_object_name(database), labels={**labels(service), **PART_OF}),
            "spec": {
                "cluster": {"name": CLUSTER},
                "name": database,
                "owner": database,
                "ensure": "present",
                # Deleting this object never drops the orders or the payments.
                "databaseReclaimPolicy": "retain",
            },
        }
        for database in topology.load().databases_of(service)
    ]


def scheduled_backup() -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ScheduledBackup",
        "metadata": metadata(f"{CLUSTER}-daily", labels=dict(PART_OF)),
        "spec": {
            "cluster": {"name": CLUSTER},
            # Six fields, seconds first: every day at 03:00.
            "schedule": "0 0 3 * * *",
            # A base backup as soon as the cluster exists: recovery needs one to
            # start from, the archived WAL does the rest.
            "immediate": True,
            "method": "plugin",
            "pluginConfiguration": {"name": BACKUP_PLUGIN},
            # Read the base backup from a standby; the primary keeps serving.
            "target": "prefer-standby",
            "backupOwnerReference": "self",
        },
    }


def _secret_ref(secret: str, key: str) -> dict[str, Any]:
    return {"secretKeyRef": {"name": secret, "key": key}}


def connection_env(service: str) -> list[dict[str, Any]]:
    """Environment of the service's container that connects it to its databases.

    Its own database (SHOPMESH_DATABASE_URL left empty) through libpq's PG*
    variables, user and password straight from the role's Secret. Any other
    database gets a conninfo string in its variable, built by Kubernetes from the
    Secret's fields defined just before it ($(VAR) expands only earlier
    variables); the keys it leaves out (host, port, TLS) come from the PG*
    variables, as libpq reads them. The password is quoted, so it must not
    contain `'` or `\\`: istio/README.md generates hex passwords.
    """
    env: list[dict[str, Any]] = [
        {"name": "PGHOST", "value": primary_host()},
        {"name": "PGPORT", "value": str(PORT)},
        # Never a standby, even if a stale endpoint offered one.
        {"name": "PGTARGETSESSIONATTRS", "value": "read-write"},
        {"name": "PGSSLMODE", "value": "verify-full"},
        {"name": "PGSSLROOTCERT", "value": f"{CA_MOUNT}/ca.crt"},
        {"name": "PGAPPNAME", "value": service},
    ]
    for database, variable in topology.load().databases_of(service).items():
        secret = role_secret(database)
        if variable == topology.OWN_DATABASE_VARIABLE:
            env += [
                {"name": "PGDATABASE", "value": database},
                {"name": "PGUSER", "valueFrom": _secret_ref(secret, "username")},
                {"name": "PGPASSWORD", "valueFrom": _secret_ref(secret, "password")},
            ]
            continue
        prefix = variable.removesuffix("_URL")
        env += [
            {"name": f"{prefix}_USER", "valueFrom": _secret_ref(secret, "username")},
            {"name": f"{prefix}_PASSWORD", "valueFrom": _secret_ref(secret, "password")},
            {
                "name": variable,
                "value": f"dbname={database} user=$({prefix}_USER) password='$({prefix}_PASSWORD)'",
            },
        ]
    return env


def connection_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """(volume, mount) with the cluster's CA certificate only, never its key."""
    volume = {
        "name": "postgres-ca",
        "secret": {
            "secretName": CA_SECRET,
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
            "defaultMode": 0o444,
        },
    }
    mount = {"name": "postgres-ca", "mountPath": CA_MOUNT, "readOnly": True}
    return volume, mount
