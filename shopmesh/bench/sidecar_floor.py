"""The sidecars' floor beside a running local mesh: two minimal Envoys with the same mTLS.

    with sidecar_floor.running(mesh, caller="order", service="catalog", app_port=...) as floor:
        ... calls to floor.address go: outbound floor Envoy -> mTLS -> inbound floor Envoy -> app

The pair runs as the mesh runs its proxies (same binary, flags, certificates and
TLS checks, shopmesh/envoy/floor.py), in the mesh's run directory, and is
stopped on exit. What the mesh's two sidecars cost beyond it is what their
features cost.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from shopmesh.envoy import floor
from shopmesh.local.admin import EnvoyAdmin, wait_for_admin_address
from shopmesh.local.mesh import LocalMesh, envoy_command
from shopmesh.local.supervisor import Process, stop_all

__all__ = ["Floor", "running"]

START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Floor:
    address: str  # where the caller's app would call: the outbound floor Envoy
    outbound: Process
    inbound: Process
    outbound_admin: EnvoyAdmin
    inbound_admin: EnvoyAdmin


def _start(mesh: LocalMesh, name: str, config: dict) -> tuple[Process, EnvoyAdmin, int]:
    """An Envoy of the floor started and ready: (process, admin, its listener's port)."""
    layout = mesh.layout
    layout.bootstrap(name).write_text(yaml.safe_dump(config, sort_keys=False))
    layout.admin_address(name).unlink(missing_ok=True)
    process = Process(
        f"{name}.envoy", envoy_command(layout.bootstrap(name), layout.admin_address(name)),
        layout.logs,
    ).start()  # fmt: skip
    try:
        admin = EnvoyAdmin(
            wait_for_admin_address(layout.admin_address(name), START_TIMEOUT, lambda: process.alive)
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not admin.ready():
            if not process.alive or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become ready:\n{process.log_tail()}")
            time.sleep(0.05)
        (port,) = admin.listener_ports().values()
    except BaseException:
        stop_all([process], grace=5)
        raise
    return process, admin, port


@contextlib.contextmanager
def running(mesh: LocalMesh, caller: str, service: str, app_port: int) -> Iterator[Floor]:
    """The floor of the hop `caller` -> `service`, ending at the app on `app_port`."""
    ca = str(mesh.layout.ca)
    inbound, inbound_admin, inbound_port = _start(
        mesh, f"floor-{service}", floor.inbound(mesh.certs[service], ca, app_port)
    )
    try:
        config = floor.outbound(mesh.certs[caller], ca, mesh.topology.spiffe_id(service),
                                service, inbound_port)  # fmt: skip
        outbound, outbound_admin, outbound_port = _start(mesh, f"floor-{caller}", config)
    except BaseException:
        stop_all([inbound], grace=5)
        raise
    try:
        yield Floor(f"127.0.0.1:{outbound_port}", outbound, inbound, outbound_admin, inbound_admin)
    finally:
        stop_all([outbound, inbound], grace=5)
