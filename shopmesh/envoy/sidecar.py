"""A service replica's sidecar: mTLS + RBAC inbound, balanced mTLS outbound."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mesh import contracts
from shopmesh.envoy import common, end_users
from shopmesh.envoy.templates import fill
from shopmesh.identity.certs import WorkloadCert
from shopmesh.topology import Topology

__all__ = ["HEALTH_METHODS", "proxy_name", "render"]

# Every mesh identity may ask any replica whether it is healthy: callers'
# proxies do so all the time, operators' tools too.
HEALTH_METHODS = ("/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch")


def proxy_name(service: str, replica: int) -> str:
    return f"{service}-{replica}"


def _principal(topology: Topology, workload: str) -> dict[str, Any]:
    return {"authenticated": {"principal_name": {"exact": topology.spiffe_id(workload)}}}


def _policy(
    topology: Topology, workloads: list[str], paths: tuple[str, ...], end_user: bool = False
) -> dict[str, Any]:
    return fill(
        "sidecar/rbac_policy",
        permissions=[{"url_path": {"path": {"exact": path}}} for path in paths],
        principals=[_principal(topology, w) for w in workloads],
        end_user=end_users.principal() if end_user else None,
    )


def _rbac_policies(topology: Topology, service: str) -> dict[str, Any]:
    """One policy per caller in shopmesh/topology.yaml, plus health checks for all.

    A caller's calls of a service that acts for end users need a verified end user too."""
    end_user = topology.needs_end_user(service)
    policies = {
        f"{caller}-calls": _policy(topology, [caller], paths, end_user)
        for caller, paths in sorted(topology.callers(service).items())
    }
    policies["health-checks"] = _policy(topology, list(topology.workloads), HEALTH_METHODS)
    return policies


def render(
    service: str,
    replica: int,
    topology: Topology,
    identity: WorkloadCert,
    files: common.MeshFiles,
    app_port: int,
    inbound_port: int = 0,
    outbound_ports: Mapping[str, int] | None = None,
    health: common.HealthChecking | None = None,
) -> dict[str, Any]:
    """The bootstrap of replica `replica` of `service`, whose app listens on `app_port`.

    Ports left 0 are picked by the OS when Envoy binds; the runner reads them
    back from the admin API (listener names: "inbound", "outbound_<service>").
    """
    proxy = proxy_name(service, replica)
    health = health or common.HealthChecking()
    log = common.access_log(proxy)
    listeners = [
        fill(
            "sidecar/inbound",
            address=common.LOOPBACK,
            port=inbound_port,
            cert=str(identity.cert),
            key=str(identity.key),
            ca=str(files.ca),
            access_log=log,
            local_replies=fill(
                "sidecar/local_replies", message=f"the {service} service could not answer now"
            ),
            strip_headers=end_users.strip_filter(),
            end_user_tokens=end_users.sidecar_filter(topology, service, str(files.jwks)),
            policies=_rbac_policies(topology, service),
        )
    ]
    clusters = [fill("sidecar/local_app", address=common.LOOPBACK, port=app_port)]
    for upstream in topology.upstreams(service):
        routes = [
            common.method_route(contracts.method_policy(path), upstream)
            for path in topology.callers(upstream)[service]
        ]
        listeners.append(
            fill(
                "sidecar/outbound",
                upstream=upstream,
                address=common.LOOPBACK,
                port=(outbound_ports or {}).get(upstream, 0),
                access_log=log,
                local_replies=fill(
                    "sidecar/local_replies", message=f"the {upstream} service is unreachable now"
                ),
                routes=routes,
            )
        )
        clusters += common.upstream_clusters(upstream, topology, identity, files, health, proxy)
    return common.bootstrap(proxy, service, listeners, clusters, files)
