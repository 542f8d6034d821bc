"""grpc.health.v1 that reports reality: SERVING only while the service's store answers.

A probe (the service's store check) runs every `interval` seconds and, on
demand, when a Check arrives and the last probe is older than `max_age`. The
overall status ("") and each served service name move together. Draining sets
them NOT_SERVING for good, so load balancers stop sending new calls.

One more name, LIVENESS ("liveness"), answers whether the process is alive and
its server answers, nothing more: it never follows the store, and a Check for it
never waits on the store probe. Restart-on-failure checks (the Kubernetes
liveness probe) ask for it; a restart does not cure a broken database, it only
kills the pod. (Once a drain starts the server refuses new calls altogether, so
no probe gets an answer then; Kubernetes' liveness tolerance of 3 x 10 s outlasts
the drain.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

__all__ = ["LIVENESS", "HealthReporter"]

log = logging.getLogger("shopmesh.health")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# The health name of "the process is alive and its server answers".
LIVENESS = "liveness"


class _OnDemandHealthServicer(HealthServicer):
    def __init__(self, reporter: HealthReporter) -> None:
        super().__init__()
        self._reporter = reporter

    async def Check(self, request, context):
        # Liveness must not wait on (or time out behind) a hanging store probe.
        if request.service != LIVENESS:
            await self._reporter.refresh_if_stale()
        return await super().Check(request, context)


class HealthReporter:
    def __init__(
        self,
        service_names: Iterable[str],
        probe: Callable[[], Awaitable[None]],
        *,
        interval: float = 1.0,
        max_age: float = 0.25,
        probe_timeout: float = 2.0,
    ) -> None:
        self._names = ("", *service_names)
        self._probe = probe
        self._interval = interval
        self._max_age = max_age
        self._probe_timeout = probe_timeout
        self._checked_at = float("-inf")
        self._healthy: bool | None = None
        self._draining = False
        self._running_probe: asyncio.Task | None = None
        self._loop_task: asyncio.Task | None = None
        self.servicer = _OnDemandHealthServicer(self)

    def add_to_server(self, server) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)

    @property
    def healthy(self) -> bool:
        return bool(self._healthy)

    async def start(self) -> None:
        """Probe once (so the first answer is already true), then keep probing."""
        await self.servicer.set(LIVENESS, SERVING)
        for name in self._names:
            await self.servicer.set(name, NOT_SERVING)
        await self.refresh()
        self._loop_task = asyncio.create_task(self._probe_periodically(), name="health-probe")

    async def _probe_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.refresh()

    async def refresh_if_stale(self) -> None:
        if time.monotonic() - self._checked_at > self._max_age:
            await self.refresh()

    async def refresh(self) -> bool:
        # Concurrent callers share one probe instead of piling onto the store.
        if self._running_probe is None or self._running_probe.done():
            self._running_probe = asyncio.create_task(self._run_probe())
        return await asyncio.shield(self._running_probe)

    async def _run_probe(self) -> bool:
        try:
            await asyncio.wait_for(self._probe(), self._probe_timeout)
            healthy = True
        except Exception as error:
            healthy = False
            if self._healthy is not False:
                log.warning("health probe failed: %s", error)
        self._checked_at = time.monotonic()
        if self._draining:  # a healthy probe must not undo draining
            return healthy
        if healthy != self._healthy:
            self._healthy = healthy
            if healthy:
                log.info("health: SERVING")
            for name in self._names:
                await self.servicer.set(name, SERVING if healthy else NOT_SERVING)
        return healthy

    async def drain(self) -> None:
        """NOT_SERVING from now on, whatever the probe says.

        LIVENESS is left as it is (not the servicer's enter_graceful_shutdown,
        which sets every name): a drain is not a failure of the process.
        """
        self._draining = True
        await self.stop()
        for name in self._names:
            await self.servicer.set(name, NOT_SERVING)

    async def stop(self) -> None:
        for task in (self._loop_task, self._running_probe):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
