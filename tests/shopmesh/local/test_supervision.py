"""The local mesh restarts what exits on its own, and `shopmesh status` tells the story.

The kills come from outside the mesh (os.kill, as a crash, the OOM killer or a
`kill -9` in another terminal would), not through LocalMesh.kill, whose faults
stay down until the test restarts them.

The bound: a replica's app killed with SIGKILL is SERVING again, and healthy in
the view of every proxy that calls it, within RESTART_BOUND_S (measured on the
2-core build machine: 2-4 s, most of it the Python service starting; the
supervisor waits 0.5 s before the first restart, the callers' active health
checks run every 0.25 s).
"""

import os
import signal
import time

import pytest

from shopmesh import cli
from shopmesh.chaos.probes import app_health, seen_healthy
from shopmesh.local.mesh import DEFAULT_BACKOFF

from .meshclient import rest

pytestmark = pytest.mark.timeout(120)
RESTART_BOUND_S = 15.0


def _wait_for(condition, timeout: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"not within {timeout} s"
        time.sleep(0.05)
    return time.monotonic() - started


def _edge_requests_to(mesh, replica) -> int:
    hosts = mesh.upstream_hosts(mesh.edge)
    return next(h.requests for h in hosts if h.address == replica.inbound_address)


def _status_lines(mesh, capsys) -> list[str]:
    cli.main(["status", "--run-dir", str(mesh.layout.root)])
    return capsys.readouterr().out.splitlines()


def _answers(mesh) -> bool:
    try:
        return rest(mesh, "GET", "/v1/categories").status == 200
    except OSError:  # not listening yet
        return False


def _in_rotation(mesh, replica) -> bool:
    seen = seen_healthy(mesh, replica)
    return bool(seen) and all(seen.values())


def test_a_killed_app_is_restarted_serving_and_back_in_its_callers_rotation(mesh, capsys):
    replica = mesh.replica("catalog", 1)
    killed, restarts = replica.app.pid, replica.app.restarts
    os.kill(killed, signal.SIGKILL)
    back_after = _wait_for(
        lambda: (
            replica.app.pid != killed
            and app_health(replica) == "SERVING"
            and _in_rotation(mesh, replica)
        ),
        RESTART_BOUND_S,
    )
    with capsys.disabled():
        print(
            f"\nkill -9 of {replica.name}'s app: SERVING and in rotation after {back_after:.1f} s"
        )
    assert replica.app.restarts == restarts + 1
    assert replica.inbound_address in {h.address for h in mesh.upstream_hosts(mesh.edge)}
    # The edge sends it its share again (LEAST_REQUEST over two replicas).
    before = _edge_requests_to(mesh, replica)
    for _ in range(40):
        assert rest(mesh, "GET", "/v1/categories").status == 200
    assert _edge_requests_to(mesh, replica) - before >= 5

    lines = _status_lines(mesh, capsys)
    at = lines.index(next(line for line in lines if line.startswith(replica.name)))
    assert "SERVING" in lines[at]
    assert (
        lines[at + 1]
        .strip()
        .startswith(f"app restarted {restarts + 1} times; last exit killed by SIGKILL at ")
    )


def test_a_killed_sidecar_comes_back_on_its_ports(mesh, capsys):
    replica = mesh.replica("inventory", 0)
    inbound, outbound = replica.inbound_address, dict(replica.outbound_ports)
    killed = replica.sidecar.process.pid
    os.kill(killed, signal.SIGKILL)
    _wait_for(
        lambda: replica.sidecar.process.pid != killed and _in_rotation(mesh, replica),
        RESTART_BOUND_S,
    )
    assert (replica.inbound_address, replica.outbound_ports) == (inbound, outbound)
    assert replica.sidecar.process.restarts >= 1
    lines = _status_lines(mesh, capsys)
    at = lines.index(next(line for line in lines if line.startswith(replica.name)))
    assert any(
        line.strip().startswith("sidecar restarted") and "killed by SIGKILL" in line
        for line in lines[at + 1 : at + 3]
    )
    mesh.wait_healthy(30)


def test_a_killed_edge_comes_back_on_its_port(mesh):
    port, killed = mesh.edge_port, mesh.edge.process.pid
    os.kill(killed, signal.SIGKILL)
    _wait_for(lambda: mesh.edge.process.pid != killed and mesh.edge.process.alive, 10)
    _wait_for(lambda: _answers(mesh), RESTART_BOUND_S)
    assert mesh.edge_port == port
    mesh.wait_healthy(30)


def test_what_the_mesh_is_told_to_kill_stays_down_until_restarted(mesh):
    replica = mesh.replica("payment", 1)
    mesh.kill("payment", 1, signal.SIGKILL)
    _wait_for(lambda: not replica.app.alive, 5)
    time.sleep(4 * DEFAULT_BACKOFF.initial)  # what the supervisor would have waited, and more
    assert not replica.app.alive and replica.app.held
    mesh.restart("payment", 1)
    mesh.wait_healthy(30)
