"""Looking at a running local mesh from outside: replica health as the callers' proxies
see it, what an app says about itself, and the apps' circuit breakers (from /metrics)."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections.abc import Callable

from mesh import contracts
from shopmesh.local import health
from shopmesh.local.mesh import LocalMesh, Replica

__all__ = ["BREAKER_OPEN", "app_health", "breaker_states", "seen_healthy", "until"]

BREAKER_OPEN = 2  # shopmesh_client_breaker_state: 0 closed, 1 half-open, 2 open


def seen_healthy(mesh: LocalMesh, replica: Replica) -> dict[str, bool]:
    """Proxy name -> whether that caller's Envoy would send requests to `replica` now."""
    seen = {}
    for proxy in mesh.proxies():
        if replica.service not in mesh.topology.upstreams(proxy.workload):
            continue
        for host in mesh.upstream_hosts(proxy):
            if host.cluster == replica.service and host.address == replica.inbound_address:
                seen[proxy.name] = host.healthy
    return seen


def app_health(replica: Replica) -> str:
    """SERVING, NOT_SERVING or UNREACHABLE, as the app answers grpc.health.v1 directly."""
    return health.check(replica.app_address, contracts.service(replica.service).full_name, 0.5)


def breaker_states(mesh: LocalMesh, service: str, upstream: str) -> list[int | None]:
    """Each replica's breaker for `upstream` (None when its /metrics does not answer)."""
    pattern = re.compile(
        rf'^shopmesh_client_breaker_state\{{upstream="{re.escape(upstream)}"\}} ([0-9.]+)$', re.M
    )
    states: list[int | None] = []
    for replica in mesh.replicas[service]:
        try:
            url = f"http://127.0.0.1:{replica.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=1) as response:
                found = pattern.search(response.read().decode())
        except OSError:
            found = None
        states.append(int(float(found.group(1))) if found else None)
    return states


async def until(
    condition: Callable[[], bool], within: float, interval: float = 0.05
) -> float | None:
    """Seconds until `condition()` (run in a thread: probes block) held; None if it did
    not within `within` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await asyncio.to_thread(condition):
            return time.monotonic() - started
        await asyncio.sleep(interval)
    return None
