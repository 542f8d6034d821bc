"""Shoppers through the local mesh's edge (REST/JSON) at a fixed rate, for the benchmarks.

The edge's checkout limit (per customer, 1/s sustained,
shopmesh/envoy/fragments/edge/checkout_rate_limit.yaml) keeps one customer or
bot from hogging checkout; the shoppers here are many customers and stay under
it, but a benchmark of checkout latency or of capacity measures the shop behind
the edge, so it switches enforcement off through Envoy's runtime (admin API),
as an operator would. Likewise the edge's load shedding (by measured latency,
edge.SHEDDING): on for the capacity and overload benchmarks, which measure it;
off for checkout latency and throughput, which measure the shop behind it.
"""

from __future__ import annotations

import itertools
import os
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from shopmesh.bench.proc import cpu_seconds
from shopmesh.envoy import edge
from shopmesh.load import generator
from shopmesh.load.recorder import Recorder
from shopmesh.load.shoppers import ErrorAnswer, Knowledge, RestShopper
from shopmesh.local.mesh import LocalMesh

__all__ = ["Step", "at_rate", "disable_checkout_limit", "shed"]

_seeds = itertools.count(1000)


def _runtime(mesh: LocalMesh, values: Mapping[str, str]) -> None:
    query = "&".join(f"{key}={value}" for key, value in values.items())
    url = f"{mesh.edge_admin.url}/runtime_modify?{query}"
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5):
        pass


def disable_checkout_limit(mesh: LocalMesh) -> None:
    _runtime(mesh, {"checkout_rate_limit.enforced": "0"})


def shed(mesh: LocalMesh, on: bool) -> None:
    """Switches the edge's load shedding (every class) on or off."""
    _runtime(mesh, {f"shedding.{name}.enabled": str(on).lower() for name in edge.SHEDDING})


@dataclass(frozen=True)
class Step:
    rate: float  # offered arrivals per second
    recorder: Recorder
    seconds: float  # from the first arrival to the last answer
    client_vcpu: float  # the load generator's own CPU (it shares the machine)

    @property
    def latencies(self) -> list[float]:
        return self.recorder.all_latencies()

    @property
    def error_share(self) -> float:
        total = self.recorder.completed + self.recorder.dropped
        return (self.recorder.errors + self.recorder.dropped) / max(total, 1)


async def at_rate(
    session: aiohttp.ClientSession,
    mesh: LocalMesh,
    rate: float,
    seconds: float,
    mix: Mapping[str, float],
    shop: Knowledge,
    error_log: list[ErrorAnswer] | None = None,
) -> Step:
    # A seed of its own per step: the shoppers' request_ids come from it, and a step
    # repeating another's ids would be answered from the order service's dedupe.
    plan = generator.LoadPlan(rate, seconds, dict(mix), seed=next(_seeds))
    cpu_before, started = cpu_seconds(os.getpid()), time.monotonic()
    shopper = RestShopper(mesh.edge_url, session, mesh.tokens, error_log)
    recorder = await generator.run(shopper, plan, shop, progress=None)
    elapsed = time.monotonic() - started
    return Step(rate, recorder, elapsed, (cpu_seconds(os.getpid()) - cpu_before) / elapsed)
