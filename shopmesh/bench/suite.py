"""`shopmesh bench`: every benchmark in one run, one table.

Order of work: a small local mesh (catalog + order replicas) for the sidecar
comparison; standalone catalog processes for server CPU and workers; the
client chain against the echo server; a full local mesh for checkout latency,
the capacity ramp and the paper's load levels. Every comparison inside a
benchmark alternates its variants round by round, so a noisy neighbour on the
machine hits all variants alike; the machine and its load average are printed
with the table because they matter.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import os
import pathlib
import platform
import subprocess
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass

import aiohttp

from mesh.config import TlsFiles
from services.seed import SEED_PRODUCTS
from shopmesh.bench import (
    checkout,
    checkout_floor,
    client_chain,
    echo_server,
    edge_load,
    load_levels,
    order_throughput,
    overload,
    server_cpu,
    sidecars,
)
from shopmesh.bench.row import Row
from shopmesh.envoy.edge import EdgeSettings
from shopmesh.load.shoppers import RestShopper
from shopmesh.load.stats import percentile
from shopmesh.local.mesh import LocalMesh, start_local_mesh
from shopmesh.local.ops import OpsClient

__all__ = ["FULL", "PARTS", "QUICK", "Plan", "machine", "run"]

# The client chain's goals: its p50 and p99 as ratios to a bare grpc.aio call's.
CHAIN_GOALS = {
    client_chain.DEFAULT_ROOT: 1.10,
    client_chain.DEFAULT_IN_REQUEST: 1.10,
    client_chain.ALL_SAMPLED: 1.25,
}
# Enough stock that no benchmark checkout fails for want of it.
RESTOCK_UNITS = 2000


@dataclass(frozen=True)
class Plan:
    sidecar_rates: tuple[float, ...] = (300, 1000)
    sidecar_rounds: int = 4
    sidecar_seconds: float = 3
    cpu_rate: float = 500
    cpu_rounds: int = 4
    cpu_seconds: float = 3
    worker_rounds: int = 3
    worker_seconds: float = 3
    chain_calls: int = 4000
    checkout_rounds: int = 3
    checkout_seconds: float = 5
    ramp_start: float = 20
    ramp_growth: float = 1.5
    ramp_seconds: float = 4
    band_rounds: int = 2
    band_seconds: float = 6
    overload_rounds: int = 2
    overload_seconds: float = 8
    throughput_rounds: int = 2
    throughput_seconds: float = 8
    # A share of a core small enough that the order replica, not the machine, is the
    # bottleneck: at about 6 ms of CPU per order, 0.2 vCPU sustains some 30 orders/s.
    order_cpu: float = 0.2


FULL = Plan()
# A smoke run of every benchmark (about a minute); its figures mean little.
QUICK = Plan(
    sidecar_rates=(200,), sidecar_rounds=1, sidecar_seconds=1, cpu_rate=200, cpu_rounds=1,
    cpu_seconds=1, worker_rounds=1, worker_seconds=1, chain_calls=300,
    checkout_rounds=1, checkout_seconds=1, ramp_start=20, ramp_growth=3, ramp_seconds=1,
    band_rounds=1, band_seconds=1, throughput_rounds=1, throughput_seconds=1, overload_rounds=1,
    overload_seconds=1,
)  # fmt: skip


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.system()} {platform.machine()}, nproc {nproc}, {model}, "
        f"Python {platform.python_version()}, load average {load}"
    )


async def _chain_rows(plan: Plan) -> list[Row]:
    with echo_server.spawned() as (_, port):
        results = await client_chain.run(plan.chain_calls, f"127.0.0.1:{port}")
    bare, rows = results[0], []
    for result in results:
        p50 = percentile(result.samples, 50) / percentile(bare.samples, 50)
        p99 = percentile(result.samples, 99) / percentile(bare.samples, 99)
        added = (percentile(result.samples, 50) - percentile(bare.samples, 50)) * 1e6
        goal = CHAIN_GOALS.get(result.label)
        rows.append(
            Row("mesh client chain", result.label, "1 call in flight, turns call by call",
                result.samples,
                figure="floor" if result is bare
                else f"ratio p50 {p50:.2f}, p99 {p99:.2f}; p50 +{added:.0f} us",
                goal=f"p50, p99 ratio <= {goal}" if goal else "",
                met=(p50 <= goal and p99 <= goal) if goal else None)
        )  # fmt: skip
    return rows


async def _restock(mesh: LocalMesh) -> None:
    """Adds stock to every SKU as an operator would (the `ops` identity, Restock)."""
    cert = mesh.certs["ops"]
    tls = TlsFiles(ca=mesh.layout.ca, cert=cert.cert, key=cert.key, server_name="inventory")
    ops = OpsClient([r.inbound_address for r in mesh.replicas["inventory"]], tls)
    try:
        for product in SEED_PRODUCTS:
            await ops.restock(product.sku, RESTOCK_UNITS)
    finally:
        await ops.close()


async def _checkout_rows(plan: Plan, mesh: LocalMesh, floor: LocalMesh) -> list[Row]:
    for each in (mesh, floor):
        edge_load.disable_checkout_limit(each)
        edge_load.shed(each, on=False)
    await _restock(mesh)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4000)) as session:
        shop = await RestShopper(mesh.edge_url, session).learn()
        return await checkout.measure(
            session, mesh, floor, shop, plan.checkout_rounds, plan.checkout_seconds
        )


async def _edge_rows(plan: Plan, mesh: LocalMesh, say: Callable[[str], None]) -> list[Row]:
    edge_load.disable_checkout_limit(mesh)
    edge_load.shed(mesh, on=True)
    await _restock(mesh)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4000)) as session:
        shop = await RestShopper(mesh.edge_url, session).learn()
        rows: list[Row] = []
        say("capacity ramp (shopper mix through the edge)")
        capacity, steps = await load_levels.find_capacity(
            session, mesh, shop, plan.ramp_start, plan.ramp_growth, plan.ramp_seconds
        )
        rows.append(load_levels.capacity_row(capacity, steps))
        say(f"overload: the shopper mix at {' and '.join(f'{x:g}x' for x in overload.LEVELS)}"
            f" the capacity")  # fmt: skip
        rows += await overload.measure(
            session, mesh, shop, capacity or plan.ramp_start, plan.overload_rounds,
            plan.overload_seconds,
        )  # fmt: skip
        say(f"the paper's four load levels, scaled to {capacity:g}/s = 3000/s")
        rows += await load_levels.measure_bands(
            session, mesh, shop, capacity or plan.ramp_start, plan.band_rounds, plan.band_seconds
        )
    return rows


def _sidecar_part(plan: Plan, work_dir: pathlib.Path, say) -> list[Row]:
    say("GetProduct direct vs through two sidecars (small local mesh)")
    edge = EdgeSettings(port=0)
    mesh = start_local_mesh(work_dir / "small-mesh", replicas=sidecars.REPLICAS, edge_settings=edge)
    try:
        return asyncio.run(
            sidecars.measure(mesh, plan.sidecar_rates, plan.sidecar_rounds, plan.sidecar_seconds)
        )
    finally:
        mesh.stop()


def _server_cpu_part(plan: Plan, work_dir: pathlib.Path, say) -> list[Row]:
    say("server CPU per call: full stack vs trivial grpc.aio server")
    rows = asyncio.run(
        server_cpu.measure_cpu(work_dir / "cpu", plan.cpu_rate, plan.cpu_rounds, plan.cpu_seconds)
    )
    say("catalog with 1 vs 2 workers")
    return rows + asyncio.run(
        server_cpu.measure_workers(work_dir / "workers", plan.worker_rounds, plan.worker_seconds)
    )


def _chain_part(plan: Plan, work_dir: pathlib.Path, say) -> list[Row]:
    say("mesh client chain vs bare grpc.aio")
    return asyncio.run(_chain_rows(plan))


def _throughput_part(plan: Plan, work_dir: pathlib.Path, say) -> list[Row]:
    say(f"PlaceOrder, {order_throughput.IN_FLIGHT} in flight: 1 vs 2 order replicas")
    measure = functools.partial(
        order_throughput.measure, work_dir / "throughput", plan.throughput_seconds,
        plan.throughput_rounds, _restock, EdgeSettings(port=0),
    )  # fmt: skip
    rows = measure()
    say(f"the same, each order replica capped at {plan.order_cpu:g} vCPU")
    try:
        return rows + measure(order_cpu=plan.order_cpu)
    except OSError as error:  # no caps here, or the kernel refused one: the rows above stand
        variant = f"order replicas capped at {plan.order_cpu:g} vCPU"
        return [*rows, Row("PlaceOrder throughput", variant, figure=f"not run: {error}")]


def _full_mesh_part(plan: Plan, work_dir: pathlib.Path, say, parts: Collection[str]) -> list[Row]:
    """Checkout against its floor, then capacity, overload and the load levels, on one
    full local mesh (whichever of "checkout" and "edge" `parts` names)."""
    rows: list[Row] = []
    edge = EdgeSettings(port=0)
    say("starting the full local mesh")
    mesh = start_local_mesh(work_dir / "full-mesh", edge_settings=edge)
    try:
        if "checkout" in parts:
            say("starting the checkout's floor (a mesh of trivial apps)")
            floor = start_local_mesh(
                work_dir / "checkout-floor", edge_settings=edge, app_command=checkout_floor.command
            )
            try:
                say("checkout latency through the edge at 10, 25, 50/s, the shop and its floor")
                rows += asyncio.run(_checkout_rows(plan, mesh, floor))
            finally:
                floor.stop()
        if "edge" in parts:
            rows += asyncio.run(_edge_rows(plan, mesh, say))
    finally:
        mesh.stop()
    return rows


# The parts of a run, in the order they run (`shopmesh bench --only` names them).
PARTS = ("sidecars", "server-cpu", "chain", "throughput", "checkout", "edge")
_SEPARATE = {
    "sidecars": _sidecar_part,
    "server-cpu": _server_cpu_part,
    "chain": _chain_part,
    "throughput": _throughput_part,
}


def run(
    plan: Plan, work_dir: pathlib.Path, say: Callable[[str], None], parts: Collection[str] = PARTS
) -> list[Row]:
    """The rows of the named parts (all by default), in PARTS order."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown bench parts: {', '.join(sorted(unknown))}")
    rows: list[Row] = []
    for part in PARTS:
        if part in parts and part in _SEPARATE:
            rows += _SEPARATE[part](plan, work_dir, say)
    if {"checkout", "edge"} & set(parts):
        rows += _full_mesh_part(plan, work_dir, say, parts)
    return rows


def header() -> str:
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return f"shopmesh bench, {now}\nmachine: {machine()}\ncommand: {' '.join(sys.argv)}"
