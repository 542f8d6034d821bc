"""Checkout latency through the edge (REST POST /v1/orders) at 10, 25 and 50 per second.

Every checkout is the whole saga: edge -> order sidecar -> order app, which
prices at catalog, reserves at inventory, charges at payment and commits at
inventory, each hop through two sidecars with mTLS and each step saved in
PostgreSQL. Rounds cycle through the rates so every rate sees the same machine.
"""

from __future__ import annotations

from collections import Counter

import aiohttp

from shopmesh.bench import edge_load
from shopmesh.bench.row import Row, errors_text
from shopmesh.load.shoppers import Knowledge
from shopmesh.load.stats import percentile
from shopmesh.local.mesh import LocalMesh

__all__ = ["RATES", "measure"]

RATES = (10, 25, 50)
GOAL_RATE, GOAL_P99_MS = 50, 25.0


async def measure(
    session: aiohttp.ClientSession, mesh: LocalMesh, shop: Knowledge, rounds: int, seconds: float
) -> list[Row]:
    latencies: dict[float, list[float]] = {rate: [] for rate in RATES}
    outcomes: dict[float, Counter] = {rate: Counter() for rate in RATES}
    notes: dict[float, Counter] = {rate: Counter() for rate in RATES}
    for _ in range(rounds):
        for rate in RATES:
            step = await edge_load.at_rate(session, mesh, rate, seconds, {"checkout": 1.0}, shop)
            latencies[rate] += step.latencies
            outcomes[rate].update(step.recorder.outcomes["checkout"])
            notes[rate].update(step.recorder.notes)
    rows = []
    for rate in RATES:
        p99 = percentile(latencies[rate], 99) * 1000
        errors = errors_text(outcomes[rate])
        results = ", ".join(f"{k.split()[-1]} {n}" for k, n in sorted(notes[rate].items()))
        is_goal = rate == GOAL_RATE
        rows.append(
            Row("checkout via edge", f"{rate}/s", f"{len(latencies[rate])} checkouts",
                latencies[rate], errors, figure=results,
                goal=f"p99 <= {GOAL_P99_MS:g} ms, 0 errors" if is_goal else "",
                met=(p99 <= GOAL_P99_MS and errors == "0") if is_goal else None)
        )  # fmt: skip
    return rows
