"""What `shopmesh status` shows: each replica's health and each proxy's view of
the replicas it calls, read live from the apps and the Envoy admin APIs named
in the run directory's state.json, and how often the supervisor restarted each
process (and how it last exited), as the runner records it there."""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass, field

from mesh import contracts
from shopmesh.local import health
from shopmesh.local.admin import EnvoyAdmin, HostState
from shopmesh.local.layout import RunDir
from shopmesh.local.supervisor import Exit

__all__ = ["History", "MeshStatus", "ProxyStatus", "ReplicaStatus", "read"]


@dataclass(frozen=True)
class History:
    """A process's restarts by the supervisor and how it last exited."""

    restarts: int = 0
    last_exit: Exit | None = None

    @classmethod
    def of(cls, recorded: dict | None) -> History:
        recorded = recorded or {}
        last = recorded.get("last_exit")
        return cls(recorded.get("restarts", 0), Exit(**last) if last else None)


@dataclass(frozen=True)
class ProxyStatus:
    name: str
    admin: str
    live: bool
    # The replicas it calls, by cluster; `name` of a host is the replica's.
    hosts: list[tuple[str, HostState]] = field(default_factory=list)
    history: History = History()

    @property
    def healthy(self) -> bool:
        return self.live and all(host.healthy for _, host in self.hosts)


@dataclass(frozen=True)
class ReplicaStatus:
    name: str
    service: str
    app: str
    app_health: str  # SERVING, NOT_SERVING, UNREACHABLE, ...
    inbound: str
    sidecar: ProxyStatus
    app_history: History = History()
    version: str = "v1"
    canary: bool = False  # the version being rolled out (shopmesh rollout)


@dataclass(frozen=True)
class MeshStatus:
    edge_url: str
    edge: ProxyStatus
    replicas: list[ReplicaStatus]
    # service -> percent of its calls to the version being rolled out
    canary_weights: dict[str, int] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.edge.healthy and all(
            r.app_health == "SERVING" and r.sidecar.healthy for r in self.replicas
        )


def _proxy(
    name: str, admin_address: str | None, names: dict[str, str], history: History
) -> ProxyStatus:
    if not admin_address:
        return ProxyStatus(name, "-", live=False, history=history)
    admin = EnvoyAdmin(admin_address)
    if not admin.ready():
        return ProxyStatus(name, admin_address, live=False, history=history)
    hosts = [
        (names.get(host.address, host.address), host)
        for host in admin.hosts()
        if host.cluster != "local_app"
    ]
    return ProxyStatus(name, admin_address, live=True, hosts=hosts, history=history)


def read(run_dir: pathlib.Path) -> MeshStatus:
    """The status of the mesh running from `run_dir`; FileNotFoundError if none is."""
    state = json.loads(RunDir(run_dir).state.read_text())
    names = {r["inbound"]: r["name"] for r in state["replicas"]}
    replicas = [
        ReplicaStatus(
            name=r["name"],
            service=r["service"],
            app=r["app"],
            app_health=health.check(r["app"], contracts.service(r["service"]).full_name),
            inbound=r["inbound"],
            sidecar=_proxy(
                r["name"], r["sidecar_admin"], names, History.of(r.get("sidecar_history"))
            ),
            app_history=History.of(r.get("app_history")),
            version=r.get("version", "v1"),
            canary=r.get("canary", False),
        )
        for r in state["replicas"]
    ]
    edge = state["edge"]
    edge_status = _proxy("edge", edge["admin"], names, History.of(edge))
    return MeshStatus(edge["url"], edge_status, replicas, state.get("canary_weights", {}))
