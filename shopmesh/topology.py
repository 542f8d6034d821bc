"""The mesh topology (shopmesh/topology.yaml) joined with the contracts.

`allowed_calls()` is the one call graph: Envoy RBAC and Istio AuthorizationPolicy
are generated from or compared with it. `databases` is the one list of PostgreSQL
databases: the local server (shopmesh.local.postgres) and the CloudNativePG
Cluster of istio/ create exactly these, and point each service at its own.
"""

from __future__ import annotations

import functools
import pathlib
import re
from dataclasses import dataclass

import yaml

from mesh import contracts

__all__ = ["EndUsers", "Topology", "load"]

TOPOLOGY_FILE = pathlib.Path(__file__).with_name("topology.yaml")
PUBLIC = "public"
# A PostgreSQL identifier that needs no quoting (it names a database and its role).
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]*")
# What services.runtime.config reads for the service's own database.
OWN_DATABASE_VARIABLE = "SHOPMESH_DATABASE_URL"
END_USER_REQUIRED = "required"


@dataclass(frozen=True)
class EndUsers:
    """Whose JWTs identify end users: the issuer (`iss`) and audience (`aud`) they must name."""

    issuer: str
    audience: str


@dataclass(frozen=True)
class Topology:
    trust_domain: str
    namespace: str
    clients: tuple[str, ...]
    replicas: dict[str, int]
    # service -> caller -> sorted gRPC method paths the caller may call
    allowed: dict[str, dict[str, tuple[str, ...]]]
    # database (= its owning role) -> (the service that opens it, the environment
    # variable carrying its connection string), sorted by database
    databases: dict[str, tuple[str, str]]
    end_users: EndUsers
    # Services every call of which must carry a verified end user (health checks aside).
    end_user_services: frozenset[str] = frozenset()

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(self.replicas)

    @property
    def workloads(self) -> tuple[str, ...]:
        return self.clients + self.services

    def spiffe_id(self, workload: str) -> str:
        return f"spiffe://{self.trust_domain}/ns/{self.namespace}/sa/{workload}"

    def principal(self, workload: str) -> str:
        """The workload's identity as Istio's AuthorizationPolicy spells it."""
        return f"{self.trust_domain}/ns/{self.namespace}/sa/{workload}"

    def callers(self, service: str) -> dict[str, tuple[str, ...]]:
        return self.allowed[service]

    def needs_end_user(self, service: str) -> bool:
        return service in self.end_user_services

    def upstreams(self, workload: str) -> tuple[str, ...]:
        """Services the workload calls."""
        return tuple(s for s, callers in self.allowed.items() if workload in callers)

    def databases_of(self, service: str) -> dict[str, str]:
        """The service's databases -> the variable carrying each one's connection string."""
        return {
            name: variable for name, (owner, variable) in self.databases.items() if owner == service
        }


def _resolve(service: str, methods: str | list[str]) -> tuple[str, ...]:
    contract = contracts.service(service)
    if methods == PUBLIC:
        return tuple(sorted(m.path for m in contract.methods.values() if not m.internal))
    if not isinstance(methods, list) or not methods:
        raise ValueError(f"topology: {service}: allow entries are `public` or a list of RPCs")
    unknown = sorted(set(methods) - set(contract.methods))
    if unknown:
        raise ValueError(f"topology: {service} has no RPC {', '.join(unknown)}")
    return tuple(sorted(contract.methods[m].path for m in methods))


def parse(document: dict) -> Topology:
    services = document["services"]
    declared = set(contracts.services())
    if set(services) != declared:
        raise ValueError(
            f"topology: services {sorted(services)} differ from proto/ services {sorted(declared)}"
        )
    clients = tuple(document.get("clients") or {})
    workloads = set(clients) | set(services)
    allowed: dict[str, dict[str, tuple[str, ...]]] = {}
    end_user_services = set()
    for name, spec in services.items():
        end_user = spec.get("end_user")
        if end_user not in (None, END_USER_REQUIRED):
            raise ValueError(f"topology: {name}: end_user is `{END_USER_REQUIRED}` or absent")
        if end_user:
            end_user_services.add(name)
        allowed[name] = {}
        for caller, methods in (spec.get("allow") or {}).items():
            if caller not in workloads:
                raise ValueError(f"topology: {name} allows unknown workload {caller!r}")
            allowed[name][caller] = _resolve(name, methods)
    return Topology(
        trust_domain=document["trust_domain"],
        namespace=document["namespace"],
        clients=clients,
        replicas={name: int(spec.get("replicas", 1)) for name, spec in services.items()},
        allowed=allowed,
        databases=_databases(services),
        end_users=EndUsers(**document["end_users"]),
        end_user_services=frozenset(end_user_services),
    )


def _databases(services: dict) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for service, spec in services.items():
        declared = spec.get("databases") or {}
        if OWN_DATABASE_VARIABLE not in declared.values():
            raise ValueError(f"topology: {service} has no database for {OWN_DATABASE_VARIABLE}")
        if len(set(declared.values())) != len(declared):
            raise ValueError(f"topology: {service} gives two databases the same variable")
        for name, variable in declared.items():
            if not _DATABASE_NAME.fullmatch(name):
                raise ValueError(f"topology: {service}: {name!r} is not a plain database name")
            if name in found:
                raise ValueError(f"topology: database {name} belongs to {found[name][0]} already")
            found[name] = (service, variable)
    return dict(sorted(found.items()))


@functools.cache
def load(path: pathlib.Path = TOPOLOGY_FILE) -> Topology:
    return parse(yaml.safe_load(path.read_text()))
