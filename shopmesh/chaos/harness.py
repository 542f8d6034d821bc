"""What every chaos scenario shares: a fresh local mesh, shoppers through the edge, phases,
fault actions that do not stall the load, and the checks at the end.

    report = harness.run(kill_replicas.scenario, kill_replicas.SHORT, run_dir)

A scenario is `async def scenario(chaos: Chaos, size) -> None`: it starts load,
marks phases, injects faults through the mesh (`await chaos.act(...)`: mesh
actions block, so they run in a thread while the shoppers keep shopping) and
adds its own checks. The harness then waits for every order to be final,
checks the invariants (shopmesh.chaos.invariants) and returns a Report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from mesh.config import TlsFiles
from services.inventory.store import SEED_QUANTITY
from services.seed import SEED_PRODUCTS
from shopmesh.chaos import invariants, ledger
from shopmesh.chaos.report import Report
from shopmesh.chaos.timeline import Timeline, summarize
from shopmesh.envoy.edge import EdgeSettings
from shopmesh.load import generator
from shopmesh.load.shoppers import ErrorAnswer, Knowledge, RestShopper
from shopmesh.local.mesh import LocalMesh, start_local_mesh
from shopmesh.local.ops import OpsClient, PaymentOps
from shopmesh.local.postgres import SUPERUSER
from shopmesh.local.supervisor import stop_all

__all__ = ["CHAOS_ENV", "Chaos", "drive", "run"]

log = logging.getLogger("shopmesh.chaos")

# Order service settings for chaos runs: a crashed replica's sagas are taken over
# after 3 s instead of 10, so a killed order replica's checkouts finish within the
# edge's 10 s PlaceOrder timeout. Recovery passes keep their default period (2 s).
CHAOS_ENV = {
    "SHOPMESH_ORDER_LEASE_SECONDS": "3",
    # Refunds whose gateway answer was lost are settled within seconds, not half a minute.
    "SHOPMESH_PAYMENT_RESOLVE_SECONDS": "1",
    "SHOPMESH_PAYMENT_PENDING_REFUND_SECONDS": "3",
}
# LedgerDatabases' fields, in order.
LEDGER_DATABASES = ("order", "inventory", "payment", "payment_gateway")
# The load never runs longer than this; scenarios stop it when they are done.
MAX_LOAD_SECONDS = 3600


class Chaos:
    """One scenario run: the mesh, the shoppers, the phases and the report being built."""

    def __init__(self, mesh: LocalMesh, session: aiohttp.ClientSession, report: Report,
                 progress: Callable[[str], None]) -> None:  # fmt: skip
        self.mesh = mesh
        self.session = session
        self.report = report
        self.progress = progress
        self.files = ledger.LedgerDatabases(
            *(mesh.postgres.url(SUPERUSER, name) for name in LEDGER_DATABASES)
        )
        self.received = {p.sku: SEED_QUANTITY for p in SEED_PRODUCTS}
        self.timelines: list[Timeline] = []
        self.error_answers: list[ErrorAnswer] = []  # every non-200 a shopper got
        self._loads: list[asyncio.Task] = []
        self._phase: tuple[str, float] | None = None
        self._ops: OpsClient | None = None
        self._payment_ops: PaymentOps | None = None
        self.shop: Knowledge | None = None
        self._loads_started = 0

    # -- shoppers ----------------------------------------------------------

    def shopper(self) -> RestShopper:
        return RestShopper(
            self.mesh.edge_url, self.session, self.mesh.tokens, error_log=self.error_answers
        )

    async def knowledge(self) -> Knowledge:
        if self.shop is None:
            self.shop = await self.shopper().learn()
        return self.shop

    async def start_load(self, rate: float, mix: Mapping[str, float], shopper=None,
                         shop: Knowledge | None = None,
                         seed: int | None = None) -> Timeline:  # fmt: skip
        """Shoppers arriving at `rate` per second until `stop_load()`. `seed`: where a mesh
        already served another run's shoppers, one of their seeds must not come again."""
        timeline = Timeline(shopper or self.shopper())
        seed = self._seed() if seed is None else seed
        plan = generator.LoadPlan(rate, MAX_LOAD_SECONDS, dict(mix), seed=seed)
        shop = shop or await self.knowledge()
        self.timelines.append(timeline)
        self._loads.append(asyncio.create_task(generator.run(timeline, plan, shop, progress=None)))
        return timeline

    async def burst(self, rate: float, seconds: float, shopper, shop: Knowledge,
                    mix: Mapping[str, float]) -> Timeline:  # fmt: skip
        """A bounded run of arrivals (e.g. a flash sale); returns when all have answered."""
        timeline = Timeline(shopper)
        plan = generator.LoadPlan(rate, seconds, dict(mix), seed=self._seed())
        await generator.run(timeline, plan, shop, progress=None)
        return timeline

    def _seed(self) -> int:
        # Shoppers draw their request_ids from the seed: each load gets its own, or
        # its checkouts would repeat another's and be answered by the order's dedupe.
        self._loads_started += 1
        return self._loads_started

    async def stop_load(self) -> None:
        for task in self._loads:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loads.clear()
        for timeline in self.timelines:
            await timeline.drained()

    # -- phases and faults -------------------------------------------------

    def phase(self, label: str) -> None:
        """Ends the current phase (if any) and starts `label`."""
        now = time.monotonic()
        self._close_phase(now)
        self._phase = (label, now)
        self.progress(f"phase: {label}")

    def _close_phase(self, now: float) -> None:
        if self._phase is not None:
            label, start = self._phase
            self.report.phase_spans[label] = (start, now)
            self._phase = None

    async def hold(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def act(self, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Runs a blocking mesh action in a thread: the shoppers' event loop keeps going."""
        return await asyncio.to_thread(action, *args, **kwargs)

    def reconfigure(self, service: str, index: int, env: Mapping[str, str | None]) -> None:
        """Restarts one replica's app with changed environment (None removes a variable),
        draining it first: how a knob that is read at start is turned at run time."""
        replica = self.mesh.replica(service, index)
        stop_all([replica.app], grace=self.mesh.drain_seconds + 5)
        for name, value in env.items():
            if value is None:
                replica.app.env.pop(name, None)
            else:
                replica.app.env[name] = value
        self.mesh.restart(service, index)

    # -- the operators' view ---------------------------------------------------

    def _ops_tls(self, service: str) -> TlsFiles:
        cert = self.mesh.certs["ops"]
        return TlsFiles(ca=self.mesh.layout.ca, cert=cert.cert, key=cert.key, server_name=service)

    def _addresses(self, service: str) -> list[str]:
        return [r.inbound_address for r in self.mesh.replicas[service]]

    @property
    def ops(self) -> OpsClient:
        if self._ops is None:
            self._ops = OpsClient(self._addresses("inventory"), self._ops_tls("inventory"))
        return self._ops

    @property
    def payment_ops(self) -> PaymentOps:
        if self._payment_ops is None:
            self._payment_ops = PaymentOps(self._addresses("payment"), self._ops_tls("payment"))
        return self._payment_ops

    async def restock(self, sku: str, quantity: int) -> None:
        await self.ops.restock(sku, quantity)
        self.received[sku] = self.received.get(sku, 0) + quantity

    async def ledger(self) -> ledger.Ledger:
        return await asyncio.to_thread(ledger.read, self.files)

    # -- the end ---------------------------------------------------------------

    async def settle(self, bound: float) -> None:
        """Stops the load, waits up to `bound` s for every order to be final, checks."""
        await self.stop_load()
        self._close_phase(time.monotonic())
        started = time.monotonic()
        while True:
            orders = await asyncio.to_thread(ledger.read_orders, self.files.order)
            unfinished = [o for o in orders.values() if not o.final]
            waited = time.monotonic() - started
            if not unfinished or waited > bound:
                break
            await asyncio.sleep(0.25)
        self.report.figures["orders final after load stopped (s)"] = (
            f"{waited:.1f}" if not unfinished else f"> {bound:.0f} ({len(unfinished)} not final)"
        )
        snapshot = await self.ledger()
        levels = await self.ops.stock_levels(sorted(self.received))
        self.report.violations = invariants.check(snapshot, self.received, levels)
        self.report.order_statuses = snapshot.order_statuses()
        # Calls are attributed to the phase they started in, once all have answered.
        calls = [c for t in self.timelines for c in t.calls]
        for label, (start, end) in self.report.phase_spans.items():
            self.report.phases.append(
                summarize(label, [c for c in calls if start <= c.start < end])
            )
        self.report.overall = summarize("whole run", calls)

    async def close(self) -> None:
        await self.stop_load()
        for client in (self._ops, self._payment_ops):
            if client is not None:
                await client.close()


Scenario = Callable[[Chaos, Any], Awaitable[None]]


def run(
    name: str,
    scenario: Scenario,
    size: Any,
    run_dir: pathlib.Path,
    progress: Callable[[str], None] = lambda message: log.info("%s", message),
) -> Report:
    """Runs `scenario` against a fresh local mesh in `run_dir` and returns its report."""
    report = Report(name)
    started = time.monotonic()
    progress(f"{name}: starting the local mesh in {run_dir}")
    mesh = start_local_mesh(
        pathlib.Path(run_dir),
        edge_settings=EdgeSettings(port=0),
        app_env=CHAOS_ENV,
        drain_seconds=1.0,
        log_level="WARNING",
    )
    try:
        asyncio.run(drive(mesh, scenario, size, report, progress))
    finally:
        mesh.stop()
    report.figures["run time (s)"] = f"{time.monotonic() - started:.0f}"
    return report


async def drive(mesh: LocalMesh, scenario: Scenario, size: Any, report: Report,
                progress: Callable[[str], None]) -> None:  # fmt: skip
    """Runs `scenario` with shoppers against a mesh that is already running (run() starts
    a fresh one; a test may share one mesh between scenarios)."""
    connector = aiohttp.TCPConnector(limit=1000)
    async with aiohttp.ClientSession(connector=connector) as session:
        chaos = Chaos(mesh, session, report, progress)
        try:
            await scenario(chaos, size)
        finally:
            await chaos.close()
