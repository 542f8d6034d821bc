"""Building, running and draining a service's gRPC server.

`create_server(config)` returns a started server and the port it bound (bind
port 0 in tests); `serve(name)` runs one until SIGTERM/SIGINT and then drains:
health goes NOT_SERVING, no new RPCs are accepted, in-flight ones get up to
SHOPMESH_DRAIN_SECONDS to finish, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence

import grpc
from grpc_reflection.v1alpha import reflection

from mesh import contracts
from services.runtime.config import ServerConfig
from services.runtime.health import HealthReporter
from services.runtime.interceptors import server_interceptors
from services.runtime.logs import configure_logging
from services.runtime.metrics import MetricsServer, start_metrics_server
from services.runtime.service import Service, Store, lookup
from services.runtime.tracing import configure_tracing
from services.runtime.workers import serve_workers

__all__ = ["Server", "create_server", "serve"]

log = logging.getLogger("shopmesh.server")
HEALTH_SERVICE = "grpc.health.v1.Health"


# Request metadata a server accepts: as much as the Envoy in front of it passes
# (its default max_request_headers_kb is 60), so a call its sidecar forwarded is
# never refused here. gRPC's own default refuses 8-16 KiB at random (a soft
# limit) and above 16 KiB always, as RESOURCE_EXHAUSTED: through the edge, a
# long URL (the transcoder forwards it as x-envoy-original-path) was an HTTP 429.
MAX_METADATA_BYTES = 64 * 1024


def _server_options(config: ServerConfig) -> tuple:
    return (
        # Off unless this process is one of several workers sharing the port on purpose:
        # otherwise a second process could bind it by mistake and take half the traffic.
        ("grpc.so_reuseport", 1 if config.reuse_port else 0),
        ("grpc.max_receive_message_length", 4 * 1024 * 1024),
        ("grpc.max_metadata_size", MAX_METADATA_BYTES),
        ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
    )


class Server:
    """A running service: the gRPC server plus what it owns (store, health, jobs, /metrics)."""

    def __init__(
        self,
        config: ServerConfig,
        grpc_server: grpc.aio.Server,
        store: Store,
        health: HealthReporter,
        servicer,
    ) -> None:
        self.config = config
        self.grpc_server = grpc_server
        self.store = store
        self.health = health
        self.servicer = servicer
        self.port = 0
        self.metrics: MetricsServer | None = None
        self.jobs: list[asyncio.Task] = []
        self._stopped = False

    @property
    def metrics_port(self) -> int | None:
        return self.metrics.port if self.metrics else None

    async def stop(self, grace: float | None = None) -> None:
        """Drain: NOT_SERVING, refuse new calls, let in-flight ones finish within `grace`."""
        if self._stopped:
            return
        self._stopped = True
        grace = self.config.drain_seconds if grace is None else grace
        log.info("draining", extra={"grace_seconds": grace})
        await self.health.drain()
        await self.grpc_server.stop(grace)
        await _cancel_until_done(self.jobs)
        await self.store.close()
        if self.metrics:
            self.metrics.stop()
        log.info("stopped")

    async def wait_for_termination(self) -> None:
        await self.grpc_server.wait_for_termination()


async def _cancel_until_done(jobs: list[asyncio.Task]) -> None:
    """Cancel the jobs and wait for them, cancelling again any that is still running.

    One cancellation can be lost: asyncio.wait_for before Python 3.12 drops it when
    the awaited thing finishes at that moment, and psycopg_pool waits for a free
    connection with wait_for. A job whose cancellation arrives just as the pool hands
    it a connection then goes on, into its next hour-long sleep, and stop() would
    wait for it forever.
    """
    while running := [job for job in jobs if not job.done()]:
        for job in running:
            job.cancel()
        await asyncio.wait(running, timeout=0.5)
    for job in jobs:  # all done: collect their outcomes (a failed job does not stop us)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await job


async def create_server(
    config: ServerConfig,
    service: Service | None = None,
    *,
    tracer_provider=None,
    extra_interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> tuple[Server, int]:
    """Open the service's store and start serving it on `config.listen`.

    `extra_interceptors` run inside the standard chain (server_interceptors), next to
    the handlers: e.g. a rehearsal's injected faults, which metrics and callers then
    see as the service's own."""
    service = service or lookup(config.service)
    contract = contracts.service(service.name)
    store = await service.open_store(config)
    try:
        servicer = service.make_servicer(config, store)
        grpc_server = grpc.aio.server(
            interceptors=[*server_interceptors(tracer_provider), *extra_interceptors],
            options=_server_options(config),
        )
        contract.add_to_server(servicer, grpc_server)
        health = HealthReporter([contract.full_name], store.probe)
        health.add_to_server(grpc_server)
        reflection.enable_server_reflection(
            (contract.full_name, HEALTH_SERVICE, reflection.SERVICE_NAME), grpc_server
        )
        server = Server(config, grpc_server, store, health, servicer)
        server.port = grpc_server.add_insecure_port(config.listen)
        if not server.port:
            raise OSError(f"cannot listen on {config.listen}")
        await health.start()
        await grpc_server.start()
    except BaseException:
        await store.close()
        raise
    for job in service.background:
        server.jobs.append(asyncio.create_task(job(config, store), name=job.__name__))
    if config.metrics_listen:
        server.metrics = start_metrics_server(config.metrics_listen)
    log.info(
        "serving",
        extra={"listen": config.listen, "port": server.port, "metrics_port": server.metrics_port},
    )
    return server, server.port


async def _run(config: ServerConfig, extra_interceptors) -> int:
    server, _ = await create_server(config, extra_interceptors=extra_interceptors)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop()
    return 0


def serve(
    name: str,
    config: ServerConfig | None = None,
    *,
    extra_interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> int:
    """Run the service `name` until SIGTERM or SIGINT; the exit code (0 after a clean drain).

    `extra_interceptors`: see create_server; they need a single process (one worker)."""
    config = config or ServerConfig.from_env(name)
    configure_logging(name, config.log_level)
    if config.workers > 1:
        if extra_interceptors:
            raise ValueError("extra interceptors need SHOPMESH_WORKERS=1")
        return serve_workers(config)
    tracing = configure_tracing(name)
    try:
        return asyncio.run(_run(config, extra_interceptors))
    finally:
        tracing.shutdown()  # exports what is still batched
