"""PlaceOrder throughput with 200 checkouts in flight, against 1 and then 2 order replicas.

A closed loop over gRPC through the edge: each of IN_FLIGHT callers places an
order (the whole saga: price, reserve, charge, commit, each step saved) and at
once places the next. It measures whether a second order replica adds write
capacity: with the state in one shared PostgreSQL it should, where a file lock
would not. On one machine a second replica can only add the CPU the machine has
to spare, so it is measured twice: as it runs, and with each order replica capped
at a share of a core (`order_cpu`), which makes the order path the bottleneck.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import random
import time
from collections import Counter

import grpc

from shopmesh.bench import edge_load
from shopmesh.bench.cpu_cap import CpuCap
from shopmesh.bench.row import Row, errors_text
from shopmesh.load.recorder import OK
from shopmesh.load.shoppers import GrpcShopper
from shopmesh.load.stats import percentile
from shopmesh.local.mesh import LocalMesh, start_local_mesh

__all__ = ["IN_FLIGHT", "answered", "fresh_rngs", "measure", "saturate"]

IN_FLIGHT = 200
CHANNELS = 8


async def saturate(mesh: LocalMesh, seconds: float) -> tuple[float, list[float], Counter]:
    """(orders placed per second, latencies, outcomes) of IN_FLIGHT closed-loop checkouts
    (a call that failed or timed out placed none; its latency and outcome still count)."""
    channels = [
        grpc.aio.insecure_channel(
            mesh.edge_address, options=[("grpc.use_local_subchannel_pool", 1)]
        )
        for _ in range(CHANNELS)
    ]
    try:
        shop = await GrpcShopper(channels[0]).learn()
        latencies: list[float] = []
        outcomes: Counter = Counter()
        deadline = time.monotonic() + seconds

        async def caller(index: int, rng: random.Random) -> None:
            shopper = GrpcShopper(channels[index % CHANNELS], tokens=mesh.tokens)
            while time.monotonic() < deadline:
                started = time.monotonic()
                outcome, note = await shopper.checkout(rng, shop)
                latencies.append(time.monotonic() - started)
                outcomes[note if outcome == OK else outcome] += 1

        started = time.monotonic()
        await asyncio.gather(*(caller(i, rng) for i, rng in enumerate(fresh_rngs(IN_FLIGHT))))
        placed = sum(n for outcome, n in outcomes.items() if answered(outcome))
        return placed / (time.monotonic() - started), latencies, outcomes
    finally:
        for channel in channels:
            await channel.close()


def fresh_rngs(count: int) -> list[random.Random]:
    """One generator per caller, seeded anew at every call: a shopper draws its
    request ids from it, and a round that drew the ids of an earlier round on the
    same mesh would measure PlaceOrder's idempotent replays, not new orders."""
    return [random.Random(random.getrandbits(64)) for _ in range(count)]


def answered(outcome: str) -> bool:
    """Whether a checkout's outcome is an answer with its order, whatever the order's
    status (GrpcShopper notes it "checkout <status>"), not a failed or timed-out call."""
    return outcome.startswith("checkout ")


def _answered(outcomes: Counter) -> Counter:
    """The outcomes with every answered checkout (whatever the order's status) as OK,
    so errors_text gives the share of failed calls among all calls."""
    by_kind: Counter = Counter()
    for outcome, n in outcomes.items():
        by_kind["OK" if answered(outcome) else outcome] += n
    return by_kind


async def _one(
    mesh: LocalMesh, seconds: float, rounds: int, restock
) -> tuple[float, list, Counter]:
    edge_load.disable_checkout_limit(mesh)
    edge_load.shed(mesh, on=False)  # 200 in flight on purpose: what the order path sustains
    await restock(mesh)
    await saturate(mesh, seconds / 2)  # fills the pools and caches of a fresh mesh
    best, latencies, outcomes = 0.0, [], Counter()
    for _ in range(rounds):
        rate, samples, seen = await saturate(mesh, seconds)
        best, latencies = max(best, rate), latencies + samples
        outcomes.update(seen)
    return best, latencies, outcomes


def measure(
    work_dir: pathlib.Path, seconds: float, rounds: int, restock, edge,
    order_cpu: float | None = None,
) -> list[Row]:  # fmt: skip
    """Rows for 1 and 2 order replicas, each on a fresh mesh (the other services: 2 each).
    With `order_cpu`, each order replica is capped at that many vCPU (cpu_cap), as if
    it had a node of that size to itself: the order path is then the bottleneck."""
    results, restarted = {}, []
    for replicas in (1, 2):
        with contextlib.ExitStack() as stack:
            cap = stack.enter_context(CpuCap(order_cpu)) if order_cpu else None
            mesh = start_local_mesh(
                work_dir / f"orders-{replicas}{'-capped' * bool(order_cpu)}",
                replicas={"catalog": 2, "inventory": 2, "payment": 2, "order": replicas},
                edge_settings=edge,
            )
            stack.callback(mesh.stop)  # before the cap's groups go: they are empty then
            capped_pids = [replica.app.pid for replica in mesh.replicas["order"]]
            for pid in capped_pids if cap else ():
                cap.add(pid)
            results[replicas] = asyncio.run(_one(mesh, seconds, rounds, restock))
            if cap and [r.app.pid for r in mesh.replicas["order"]] != capped_pids:
                restarted.append(replicas)  # its restart ran uncapped
    capped = f", each capped at {order_cpu:g} vCPU" if order_cpu else ""
    rows = []
    for replicas, (rate, latencies, outcomes) in results.items():
        figure = f"{rate:.0f} orders/s, p50 {percentile(latencies, 50) * 1000:.0f} ms"
        if replicas == 2:
            figure += f", {rate / max(results[1][0], 1e-9):.2f}x 1 replica"
        if replicas in restarted:
            figure += ", NOT all capped: an order replica restarted"
        rows.append(
            Row("PlaceOrder throughput", f"{replicas} order replica{'s' * (replicas > 1)}{capped}",
                f"closed loop, {IN_FLIGHT} in flight", latencies,
                errors_text(_answered(outcomes)), figure=figure,
                goal="faster than 1 replica" if replicas == 2 else "",
                met=rate > results[1][0] if replicas == 2 else None)
        )  # fmt: skip
    return rows
