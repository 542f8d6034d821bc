"""kill -9 one replica of each service in turn, under the shopper mix.

Each round SIGKILLs replica 0 of one service (catalog, inventory, payment,
order), keeps it down, restarts it, and lets the mesh settle. Measured: how
long the callers' proxies take to stop sending to the dead replica (failover),
how long until they send to it again after the restart (recovery), and what
the shoppers saw. Expected: sidecar retries hide the kills (few client-visible
errors) and every invariant holds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from shopmesh.chaos.harness import Chaos
from shopmesh.chaos.probes import seen_healthy, until
from shopmesh.load.generator import DEFAULT_MIX

__all__ = ["FULL", "SHORT", "Size", "scenario"]

SERVICES = ("catalog", "inventory", "payment", "order")


@dataclass(frozen=True)
class Size:
    rate: float  # shopper arrivals per second (the default mix)
    steady: float  # seconds of load before the first kill and after each restart
    down: float  # seconds a killed replica stays down
    max_error_pct: float  # client-visible errors allowed over the whole run
    max_failover: float  # seconds until every caller's proxy avoids a killed replica
    final_bound: float  # seconds for every order to be final once the load stops


# The full form holds the always-on paper's figures: sub-second failover and its
# SLO gate of < 0.1 % errors. The short form (make test, a busy CI machine) allows
# 2 s, as failover is timed by polling every proxy's admin API, and 2 %, as its
# few hundred calls make a single error 0.3 %.
SHORT = Size(rate=25, steady=1.5, down=1.5, max_error_pct=2.0, max_failover=2.0, final_bound=20)
FULL = Size(rate=80, steady=10, down=10, max_error_pct=0.1, max_failover=1.0, final_bound=30)


async def scenario(chaos: Chaos, size: Size) -> None:
    mesh = chaos.mesh
    await chaos.start_load(size.rate, DEFAULT_MIX)
    chaos.phase("steady")
    await chaos.hold(size.steady)
    failovers, recoveries = {}, {}
    for service in SERVICES:
        replica = mesh.replica(service, 0)
        chaos.phase(f"{replica.name} killed")
        await chaos.act(mesh.kill, service, 0)
        failovers[service] = await until(
            lambda r=replica: not any(seen_healthy(mesh, r).values()), within=15
        )
        await chaos.hold(max(0.0, size.down - (failovers[service] or 0)))
        chaos.phase(f"{replica.name} restarted")
        started = time.monotonic()
        await chaos.act(mesh.restart, service, 0)
        back = await until(lambda r=replica: all(seen_healthy(mesh, r).values()), within=15)
        recoveries[service] = None if back is None else time.monotonic() - started
        await chaos.hold(size.steady)
    await chaos.settle(size.final_bound)

    report = chaos.report
    for service in SERVICES:
        failover, recovery = failovers[service], recoveries[service]
        report.figures[f"{service}: kill -> callers avoid it (s)"] = _seconds(failover)
        report.figures[f"{service}: restart -> callers use it again (s)"] = _seconds(recovery)
        report.check(
            f"{service}: callers stop using a killed replica within {size.max_failover:g} s",
            failover is not None and failover <= size.max_failover,
            _seconds(failover),
        )
        report.check(f"{service}: replica back in rotation after restart", recovery is not None)
    error_pct = report.overall[3] if report.overall else 100.0
    report.check(
        f"client-visible errors <= {size.max_error_pct:g} %",
        error_pct <= size.max_error_pct,
        f"{error_pct:.2f} %",
    )


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}"
