"""Checkout latency through the edge (REST POST /v1/orders) at 10, 25 and 50 per second,
as ratios to the checkout's floor measured in the same run.

Every checkout is the whole saga: edge -> order sidecar -> order app, which
prices at catalog, reserves at inventory, charges at payment and commits at
inventory, each hop through two sidecars with mTLS and each step saved in
PostgreSQL. The floor is a second local mesh of the same shape whose apps do the
same hops and durable writes with trivial handlers (checkout_floor.py). Rounds
cycle through the rates, the shop and its floor in turn, so every figure sees
the same machine.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from shopmesh.bench import edge_load
from shopmesh.bench.proc import CpuMeter, children
from shopmesh.bench.row import Row, errors_text
from shopmesh.load.shoppers import Knowledge
from shopmesh.load.stats import percentile
from shopmesh.local.mesh import LocalMesh

__all__ = ["GOAL_P50_RATIO", "GOAL_P99_RATIO", "RATES", "measure"]

RATES = (10, 25, 50)
GOAL_P50_RATIO = 1.5  # at every rate
GOAL_RATE, GOAL_P99_RATIO = 50, 3.0
CHECKOUT = {"checkout": 1.0}


@dataclass
class _Measured:
    latencies: list[float] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    cpu: Counter = field(default_factory=Counter)  # process group -> CPU seconds
    seconds: float = 0.0  # how long the rounds took


def cpu_meter(mesh: LocalMesh) -> CpuMeter:
    """The CPU of a mesh's processes by group: each service's apps, the proxies, PostgreSQL
    (the server and the backends connected now: the services' pools keep theirs)."""
    groups: dict[str, list[int]] = {"edge + sidecars": [mesh.edge.process.pid]}
    for service, replicas in mesh.replicas.items():
        groups[service] = [r.app.pid for r in replicas if r.app.pid]
        groups["edge + sidecars"] += [r.sidecar.process.pid for r in replicas]
    if mesh.postgres.pid:
        groups["PostgreSQL"] = [mesh.postgres.pid, *children(mesh.postgres.pid)]
    return CpuMeter({group: pids for group, pids in groups.items() if pids})


async def measure(
    session: aiohttp.ClientSession,
    shop_mesh: LocalMesh,
    floor_mesh: LocalMesh,
    shop: Knowledge,
    rounds: int,
    seconds: float,
) -> list[Row]:
    meshes = {"shop": shop_mesh, "floor": floor_mesh}
    meters = {kind: cpu_meter(mesh) for kind, mesh in meshes.items()}
    idle = {}  # process group -> CPU seconds per second with no checkout (health checks, ...)
    for kind, meter in meters.items():
        meter.reset()
        await asyncio.sleep(seconds)
        idle[kind] = Counter({group: s / seconds for group, s in meter.read().items()})
    measured = {(rate, kind): _Measured() for rate in RATES for kind in meshes}
    for _ in range(rounds):
        for rate in RATES:
            for kind, mesh in meshes.items():
                meters[kind].reset()
                step = await edge_load.at_rate(session, mesh, rate, seconds, CHECKOUT, shop)
                into = measured[rate, kind]
                into.cpu.update(meters[kind].read())
                into.seconds += step.seconds
                into.latencies += step.latencies
                into.outcomes.update(step.recorder.outcomes["checkout"])
                into.notes.update(step.recorder.notes)
    rows = []
    for rate in RATES:
        rows += _rows(rate, measured[rate, "shop"], measured[rate, "floor"])
    steps = {kind: [measured[rate, kind] for rate in RATES] for kind in meshes}
    return rows + [_cpu_row(kind, steps[kind], idle[kind]) for kind in meshes]


def _cpu_row(kind: str, steps: list[_Measured], idle: Counter) -> Row:
    """CPU per checkout by process group, over every rate, less what the group burns
    with no checkout (health checks, lease renewals, recovery scans)."""
    checkouts = sum(len(step.latencies) for step in steps)
    cpu = sum((step.cpu for step in steps), Counter())
    seconds = sum(step.seconds for step in steps)
    per = {
        group: (used - idle[group] * seconds) / max(checkouts, 1) * 1000
        for group, used in cpu.items()
    }
    text = ", ".join(f"{group} {ms:.1f}" for group, ms in sorted(per.items(), key=lambda i: -i[1]))
    return Row("checkout CPU", "floor" if kind == "floor" else "the shop",
               f"{checkouts} checkouts, all rates",
               figure=f"{sum(per.values()):.1f} ms CPU per checkout: {text}")  # fmt: skip


def _rows(rate: float, shop: _Measured, floor: _Measured) -> list[Row]:
    p50 = percentile(shop.latencies, 50) / percentile(floor.latencies, 50)
    p99 = percentile(shop.latencies, 99) / percentile(floor.latencies, 99)
    results = ", ".join(f"{k.split()[-1]} {n}" for k, n in sorted(shop.notes.items()))
    goals = [f"p50 ratio <= {GOAL_P50_RATIO}"]
    met = p50 <= GOAL_P50_RATIO
    if rate == GOAL_RATE:
        goals.append(f"p99 ratio <= {GOAL_P99_RATIO}")
        met = met and p99 <= GOAL_P99_RATIO
    return [
        Row("checkout via edge", f"{rate}/s, floor (same hops and writes)",
            f"{len(floor.latencies)} checkouts", floor.latencies, errors_text(floor.outcomes),
            figure="floor"),
        Row("checkout via edge", f"{rate}/s, the shop", f"{len(shop.latencies)} checkouts",
            shop.latencies, errors_text(shop.outcomes),
            figure=f"ratio p50 {p50:.2f}, p99 {p99:.2f}; {results}",
            goal=", ".join(goals), met=met and errors_text(shop.outcomes) == "0"),
    ]  # fmt: skip
