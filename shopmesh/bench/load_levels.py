"""The research paper's four load levels, scaled to what this machine can drive.

The paper measures its shop at 100-500, 500-1500, 1500-3000 and above 3000
req/s, and publishes an average of 120 ms with 0.5 % errors in the first band
and 400 ms with 5 % errors in the last: its shop saturates around 3000 req/s.
Here the whole mesh (8 apps, 9 Envoys) and the load generator share the
machine's cores, so the bands are scaled: first a ramp finds the highest rate
that still meets the always-on paper's SLO gates (p99 < 500 ms, errors < 0.1 %)
with the shopper mix of `shopmesh load`; that rate stands for the paper's 3000,
and each band is measured at its midpoint scaled the same way (x 0.1, 0.33,
0.75 and 1.33 of it). Bands are measured in alternating rounds.
"""

from __future__ import annotations

import statistics
from collections import Counter

import aiohttp

from shopmesh.bench import edge_load
from shopmesh.bench.row import Row, errors_text
from shopmesh.load.generator import DEFAULT_MIX
from shopmesh.load.shoppers import Knowledge
from shopmesh.load.stats import percentile
from shopmesh.local.mesh import LocalMesh

__all__ = ["BANDS", "SLO", "capacity_row", "find_capacity", "measure_bands", "passes_slo"]

PAPER_SATURATION = 3000.0
# (band, its midpoint in the paper's req/s, the paper's mean latency ms and error %)
BANDS = (
    ("100-500", 300.0, 120.0, 0.5),
    ("500-1500", 1000.0, None, None),
    ("1500-3000", 2250.0, None, None),
    (">3000", 4000.0, 400.0, 5.0),
)
SLO = (0.5, 0.001)  # p99 seconds, error share: the always-on paper's gates
# Halvings of the gap between the last rate of the capacity ramp within the SLO and
# the first over it (or zero, when the first rate is already over): the capacity is
# then known to within a 2^REFINE-th of that gap.
REFINE = 2


def passes_slo(step: edge_load.Step) -> bool:
    p99_limit, error_limit = SLO
    return percentile(step.latencies, 99) < p99_limit and step.error_share < error_limit


async def find_capacity(
    session: aiohttp.ClientSession,
    mesh: LocalMesh,
    shop: Knowledge,
    start: float,
    growth: float,
    seconds: float,
    limit: float = 5000,
) -> tuple[float, list[edge_load.Step]]:
    """The highest rate that met the SLO, and every step measured: a geometric ramp up
    to the first rate over it, then REFINE halvings of the gap between that and the
    last rate within it (a ramp alone could be a factor `growth` under the capacity,
    and every ratio to the capacity with it). 0 if no rate tried met it."""
    steps, rate, capacity = [], start, 0.0
    over = None
    while rate <= limit:
        step = await edge_load.at_rate(session, mesh, rate, seconds, DEFAULT_MIX, shop)
        steps.append(step)
        if not passes_slo(step):
            over = rate
            break
        capacity = rate
        rate = round(rate * growth)
    for _ in range(REFINE if over is not None else 0):
        rate = round((capacity + over) / 2)
        if rate in (capacity, over):
            break
        step = await edge_load.at_rate(session, mesh, rate, seconds, DEFAULT_MIX, shop)
        steps.append(step)
        if passes_slo(step):
            capacity = rate
        else:
            over = rate
    return capacity, steps


async def measure_bands(
    session: aiohttp.ClientSession,
    mesh: LocalMesh,
    shop: Knowledge,
    capacity: float,
    rounds: int,
    seconds: float,
) -> list[Row]:
    scale = capacity / PAPER_SATURATION
    latencies: dict[str, list[float]] = {band: [] for band, *_ in BANDS}
    outcomes: dict[str, Counter] = {band: Counter() for band, *_ in BANDS}
    cpu: dict[str, list[float]] = {band: [] for band, *_ in BANDS}
    done: dict[str, list[float]] = {band: [] for band, *_ in BANDS}
    for _ in range(rounds):
        for band, midpoint, *_ in BANDS:
            step = await edge_load.at_rate(
                session, mesh, midpoint * scale, seconds, DEFAULT_MIX, shop
            )
            latencies[band] += step.latencies
            for counter in step.recorder.outcomes.values():
                outcomes[band].update(counter)
            outcomes[band]["dropped by the load generator"] += step.recorder.dropped
            cpu[band].append(step.client_vcpu)
            done[band].append(step.recorder.completed / step.seconds)
    rows = []
    for band, midpoint, paper_ms, paper_errors in BANDS:
        outcomes[band] = +outcomes[band]  # drop zero counts
        mean_ms = statistics.fmean(latencies[band]) * 1000 if latencies[band] else float("nan")
        failed = sum(n for k, n in outcomes[band].items() if k != "OK")
        error_pct = 100 * failed / max(sum(outcomes[band].values()), 1)
        goal, met = "", None
        if paper_ms is not None:
            goal = f"paper: mean {paper_ms:g} ms, {paper_errors:g} % errors"
            met = mean_ms <= paper_ms and error_pct <= paper_errors
        rows.append(
            Row("paper load levels", f"{band} req/s -> {midpoint * scale:.0f}/s here",
                f"{statistics.fmean(done[band]):.0f}/s done", latencies[band],
                errors_text(outcomes[band]),
                figure=f"mean {mean_ms:.1f} ms; load generator "
                       f"{statistics.fmean(cpu[band]):.2f} vCPU",
                goal=goal, met=met)
        )  # fmt: skip
    return rows


def capacity_row(capacity: float, steps: list[edge_load.Step]) -> Row:
    ramp = ", ".join(
        f"{s.rate:g}/s {percentile(s.latencies, 99) * 1000:.0f} ms"
        + (f" {100 * s.error_share:.1f} %" if s.error_share else "")
        + ("" if passes_slo(s) else " (over)")
        for s in steps
    )
    return Row("capacity (shopper mix via edge)", "highest rate within the SLO",
               f"{capacity:g}/s", figure=f"ramp p99: {ramp}",
               goal="p99 < 500 ms, errors < 0.1 %")  # fmt: skip
