"""Replicas die, come back, join and leave while clients keep calling: no request fails.

A mesh of its own (catalog only, plus the edge): these tests kill and remove replicas.
"""

import http.client
import signal
import threading
import time
from dataclasses import dataclass, field

import pytest

from shopmesh import cli
from shopmesh.envoy.edge import EdgeSettings
from shopmesh.local.mesh import LocalMesh

pytestmark = pytest.mark.timeout(180)
PATH = "/v1/products/kitchen-espresso-cup"
EJECTION_BUDGET_S = 1.0


@pytest.fixture(scope="module")
def catalog_mesh(tmp_path_factory):
    with LocalMesh(
        tmp_path_factory.mktemp("catalog-mesh"),
        replicas={"catalog": 2},
        edge_settings=EdgeSettings(port=0),
        drain_seconds=1,
    ) as running:
        yield running


@dataclass
class SteadyClients:
    """A few clients calling the edge back to back, each on its own keep-alive connection."""

    port: int
    clients: int = 2
    statuses: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self._stop.is_set():
            try:
                connection.request("GET", PATH)
                response = connection.getresponse()
                response.read()
                self.statuses.append(response.status)
            except (OSError, http.client.HTTPException) as error:
                self.errors.append(repr(error))
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            time.sleep(0.005)
        connection.close()

    def __enter__(self) -> "SteadyClients":
        for _ in range(self.clients):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    @property
    def failures(self) -> list:
        return [s for s in self.statuses if s != 200] + self.errors


def _host(mesh: LocalMesh, replica):
    for host in mesh.upstream_hosts(mesh.edge):
        if host.address == replica.inbound_address:
            return host
    return None


def _wait_for(condition, timeout: float, interval: float = 0.05) -> float:
    """Seconds until `condition()` held; raises after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s")
        time.sleep(interval)
    return time.monotonic() - started


def test_kill_9_loses_no_request_ejects_fast_and_the_restarted_replica_serves_again(
    catalog_mesh,
):
    mesh = catalog_mesh
    victim = mesh.replica("catalog", 0)
    with SteadyClients(mesh.edge_port) as clients:
        time.sleep(1.0)
        served_before_kill = len(clients.statuses)
        mesh.kill("catalog", 0, signal.SIGKILL)
        killed_at = time.monotonic()
        ejected_after = _wait_for(lambda: not _host(mesh, victim).healthy, 5, interval=0.01)
        flags = _host(mesh, victim).flags
        time.sleep(1.0)  # keep calling with one replica gone
        mesh.restart("catalog", 0)
        back_after = _wait_for(lambda: _host(mesh, victim).healthy, 15)
        requests_when_back = _host(mesh, victim).requests
        time.sleep(1.0)
        requests_later = _host(mesh, victim).requests
    print(
        f"\nkill -9 -> marked unhealthy ({', '.join(flags)}) after {ejected_after * 1000:.0f} ms;"
        f" healthy again {back_after:.1f} s after restart; {len(clients.statuses)} requests,"
        f" {len(clients.failures)} failed; {time.monotonic() - killed_at:.1f} s after the kill"
    )
    assert served_before_kill > 20
    assert clients.failures == []
    assert ejected_after < EJECTION_BUDGET_S
    assert requests_later - requests_when_back > 10, "the restarted replica gets no traffic"


def test_without_traffic_active_health_checks_notice_a_dead_replica_within_a_second(
    catalog_mesh, capsys
):
    mesh = catalog_mesh
    victim = mesh.replica("catalog", 1)
    mesh.kill("catalog", 1, signal.SIGKILL)
    noticed_after = _wait_for(
        lambda: "failed_active_health_check" in _host(mesh, victim).flags, 5, interval=0.01
    )
    print(
        f"\nkill -9, no traffic -> failed active health check after {noticed_after * 1000:.0f} ms"
    )
    # `shopmesh status` tells the same story.
    assert cli.main(["status", "--run-dir", str(mesh.layout.root)]) == 1
    out = capsys.readouterr().out
    assert "UNREACHABLE" in next(line for line in out.splitlines() if line.startswith("catalog-1"))
    assert "UNHEALTHY failed_active_health_check" in out
    assert out.rstrip().endswith("NOT all healthy")
    mesh.restart("catalog", 1)
    _wait_for(lambda: _host(mesh, victim).healthy, 15)
    assert noticed_after < EJECTION_BUDGET_S


def test_a_killed_sidecar_costs_no_request_and_comes_back_on_its_ports(catalog_mesh):
    mesh = catalog_mesh
    victim = mesh.replica("catalog", 0)
    inbound = victim.inbound_address
    with SteadyClients(mesh.edge_port) as clients:
        time.sleep(0.5)
        mesh.kill("catalog", 0, signal.SIGKILL, sidecar=True)
        _wait_for(lambda: not _host(mesh, victim).healthy, 5, interval=0.01)
        time.sleep(0.5)
        mesh.restart("catalog", 0)
        _wait_for(lambda: _host(mesh, victim).healthy, 15)
        requests_when_back = _host(mesh, victim).requests
        _wait_for(lambda: _host(mesh, victim).requests > requests_when_back + 10, 10)
    assert victim.inbound_address == inbound
    assert clients.failures == []


def test_replicas_join_and_leave_without_restarting_envoy(catalog_mesh, caplog):
    mesh = catalog_mesh
    edge_pid = mesh.edge.process.pid
    uptime = mesh.edge_admin.stats("server.uptime")["server.uptime"]
    with SteadyClients(mesh.edge_port) as clients:
        joined = mesh.add_replica("catalog")
        _wait_for(lambda: (host := _host(mesh, joined)) is not None and host.healthy, 15)
        _wait_for(lambda: _host(mesh, joined).requests > 10, 10)
        mesh.remove_replica("catalog", joined.index)
        _wait_for(lambda: _host(mesh, joined) is None, 15)
        time.sleep(0.5)
    # Every caller dropped the replica before it was stopped, not after.
    assert "still routed to" not in caplog.text
    assert clients.failures == []
    assert len(clients.statuses) > 50
    assert mesh.edge.process.pid == edge_pid and mesh.edge.process.alive
    assert mesh.edge_admin.stats("server.uptime")["server.uptime"] >= uptime
    assert len([h for h in mesh.upstream_hosts(mesh.edge) if h.cluster == "catalog"]) == 2
