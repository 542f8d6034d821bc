"""The shop past its capacity: the shopper mix at 1.5x and 2x the rate it serves within its SLO.

The shop should shed what it cannot serve quickly and politely (429 with retry
advice: `retry-after`, and for REST a JSON google.rpc.Status with a RetryInfo
detail), keep what it admits within the SLO and keep checkouts ahead of
browsing. The per-customer checkout limit is off, as in every edge benchmark:
every 429 here is the edge's load shedding. Per level the table has: goodput
(answers that are not errors, per second) as a share of the measured capacity,
the p99 of those answers (the admitted), what was shed and how fast, whether
every shed answer carried retry advice, and the share of checkouts and of
browsing calls served.

The admitted p99 is measured twice: by the load generator, and by the edge
itself (its clusters' upstream_rq_time histograms: from when the edge sent an
admitted request on to when its answer came back), which is where an SLO on the
shop's latency is read (Prometheus from the ingress). They differ because the
load generator is a Python process on the same two cores: past capacity its
own queue adds to every answer, the edge's immediate 429s among them (the
shed answers' p99 as the generator saw them says how much). The goal is judged
on the edge's figure; both are printed. What the edge's figure leaves out: its
own work before sending a request on (filters, transcoding), and calls that
ran into their route's timeout (a 504 records no upstream time): those count
as errors instead, and any error fails the level.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from shopmesh.bench import edge_load
from shopmesh.bench.proc import CpuMeter, children
from shopmesh.bench.row import Row
from shopmesh.envoy.edge import EDGE
from shopmesh.envoy.routing import canary_cluster
from shopmesh.load.generator import DEFAULT_MIX
from shopmesh.load.recorder import OK
from shopmesh.load.shoppers import ErrorAnswer, Knowledge
from shopmesh.load.stats import percentile
from shopmesh.local.mesh import LocalMesh
from shopmesh.local.proxy_stats import Counts, Figures, Meter

__all__ = ["LEVELS", "measure"]

LEVELS = (1.5, 2.0)
GOODPUT_GOAL = 0.9  # of capacity
ADMITTED_P99_GOAL = 0.5  # seconds: the SLO
SHED = ("HTTP 429",)  # the edge's answer to what it sheds (any other error is one)
BROWSING = ("browse", "search", "product")


@dataclass
class _Level:
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)  # outcome -> latencies
    served: Counter = field(default_factory=Counter)  # operation -> answers not errors
    calls: Counter = field(default_factory=Counter)  # operation -> calls
    errors: list[ErrorAnswer] = field(default_factory=list)
    at_edge: list[Counts] = field(default_factory=list)  # admitted calls, per cluster and step
    client_vcpu: list[float] = field(default_factory=list)  # the load generator's, per step
    cpu: Counter = field(default_factory=Counter)  # process group -> CPU seconds

    def of(self, *outcomes: str) -> list[float]:
        return [x for outcome in outcomes for x in self.latencies.get(outcome, [])]

    def share(self, operations: tuple[str, ...]) -> float:
        calls = sum(self.calls[o] for o in operations)
        return sum(self.served[o] for o in operations) / max(calls, 1)


def with_retry_advice(answer: ErrorAnswer) -> bool:
    """A JSON google.rpc.Status with a RetryInfo detail (the edge's shed answers)."""
    try:
        status = json.loads(answer.body)
        details = status["details"]
        return isinstance(status["code"], int) and any(
            str(d.get("@type", "")).endswith("google.rpc.RetryInfo") for d in details
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


async def measure(
    session: aiohttp.ClientSession,
    mesh: LocalMesh,
    shop: Knowledge,
    capacity: float,
    rounds: int,
    seconds: float,
) -> list[Row]:
    levels = {level: _Level() for level in LEVELS}
    edge = edge_meter(mesh)
    meter = _cpu_meter(mesh)
    for _ in range(rounds):
        for level, into in levels.items():
            before = await asyncio.to_thread(edge.read)
            meter.reset()
            step = await edge_load.at_rate(
                session, mesh, capacity * level, seconds, DEFAULT_MIX, shop, into.errors
            )
            into.cpu.update(meter.read())
            after = await asyncio.to_thread(edge.read)
            into.at_edge += [
                counts.since(before[cluster][proxy])
                for cluster, by_proxy in after.items()
                for proxy, counts in by_proxy.items()
                if proxy in before[cluster]  # (a reading that failed counts nothing)
            ]
            into.seconds += step.seconds
            into.client_vcpu.append(step.client_vcpu)
            for outcome, latencies in step.recorder.by_outcome.items():
                into.latencies.setdefault(outcome, []).extend(latencies)
            for operation, outcomes in step.recorder.outcomes.items():
                into.calls[operation] += sum(outcomes.values())
                into.served[operation] += outcomes[OK]
    return [_row(level, capacity, levels[level]) for level in LEVELS]


def edge_meter(mesh: LocalMesh) -> Meter:
    """The edge's calls to every service it routes to (each version's cluster)."""
    services = mesh.topology.upstreams(EDGE)
    clusters = [*services, *(canary_cluster(s) for s in services)]
    return Meter(lambda: [(EDGE, mesh.edge_admin)], clusters)


def _cpu_meter(mesh: LocalMesh) -> CpuMeter:
    """Where the machine's CPU goes under overload: the edge apart from the sidecars
    (it answers what is shed), the apps, PostgreSQL."""
    groups: dict[str, list[int]] = {
        "edge": [mesh.edge.process.pid],
        "sidecars": [r.sidecar.process.pid for rs in mesh.replicas.values() for r in rs],
        "apps": [r.app.pid for rs in mesh.replicas.values() for r in rs if r.app.pid],
    }
    if mesh.postgres.pid:
        groups["PostgreSQL"] = [mesh.postgres.pid, *children(mesh.postgres.pid)]
    return CpuMeter(groups)


def _row(level: float, capacity: float, measured: _Level) -> Row:
    admitted, shed = measured.of(OK), measured.of(*SHED)
    goodput = len(admitted) / max(measured.seconds, 1e-9)
    shed_answers = [a for a in measured.errors if f"HTTP {a.status}" in SHED]
    polite = sum(map(with_retry_advice, shed_answers))
    others = sum(len(v) for k, v in measured.latencies.items() if k != OK and k not in SHED)
    checkout, browsing = measured.share(("checkout",)), measured.share(BROWSING)
    edge_p99_ms = Figures.of(measured.at_edge).p99_ms
    edge_p99 = edge_p99_ms / 1000 if edge_p99_ms is not None else float("inf")
    met = (
        goodput >= GOODPUT_GOAL * capacity
        and edge_p99 < ADMITTED_P99_GOAL
        and polite == len(shed_answers)
        and checkout >= browsing
        and others == 0
    )
    shed_p99 = f", shed p99 {percentile(shed, 99) * 1000:.0f} ms" if shed else ""
    seconds = max(measured.seconds, 1e-9)
    cores = ", ".join(f"{group} {used / seconds:.2f}" for group, used in measured.cpu.items())
    return Row(
        "overload (shopper mix via edge)", f"{level:g}x capacity",
        f"{capacity * level:.0f}/s offered", admitted,
        errors=f"{others} other errors" if others else "0",
        figure=f"goodput {goodput:.0f}/s = {goodput / max(capacity, 1e-9):.0%} of capacity; "
               f"admitted p99 at the edge {edge_p99 * 1000:.0f} ms; "
               f"shed {len(shed)} ({polite}/{len(shed_answers)} with retry advice){shed_p99}; "
               f"served: checkout {checkout:.0%}, browsing {browsing:.0%}; vCPU: {cores}, load "
               f"generator {sum(measured.client_vcpu) / max(len(measured.client_vcpu), 1):.2f}",
        goal=f"goodput >= {GOODPUT_GOAL:.0%}, admitted p99 at the edge < "
             f"{ADMITTED_P99_GOAL * 1000:.0f} ms, checkout first",
        met=met,
    )  # fmt: skip
