"""Checkout latency and PlaceOrder throughput of one tree of this project, for comparing
storage engines: this tree (PostgreSQL) against the last release on SQLite.

    tools/engine_figures.py [SECONDS]     # run from a tree's root with its .venv/bin/python

Prints one JSON line: checkout p50 / p99 (ms), count and outcomes through the edge
at 10, 25 and 50 per second (a fresh local mesh, the shopper's REST checkout), and
PlaceOrder throughput with 200 calls in flight against 1 and 2 order replicas
(orders/s, p50 ms, answered, failures; after a warm-up round half as long), as
they run and with each order replica capped at 0.2 vCPU (cpu_cap: needs root). It
uses only what both trees have (shopmesh.bench's edge_load, order_throughput and
cpu_cap, the local mesh), so the same file measures either. The SQLite release is commit
85f7324; to compare, in one run with the two trees taking turns:

    git worktree add ../sqlite-release 85f7324 && make -C ../sqlite-release install
    cp shopmesh/bench/{order_throughput,cpu_cap}.py ../sqlite-release/shopmesh/bench/  # (*)
    for round in 1 2; do for tree in ../sqlite-release .; do
        (cd $tree && .venv/bin/python "$OLDPWD/tools/engine_figures.py" 8)
    done; done

(*) that release had neither the throughput benchmark nor CPU caps: copy this
tree's, and in the throughput benchmark's copy drop the `tokens=` argument of
GrpcShopper and the edge_load.shed call (that release had neither end users nor
shedding).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import shutil
import sys
import tempfile

import aiohttp

from shopmesh.bench import edge_load, order_throughput
from shopmesh.bench.cpu_cap import CpuCap
from shopmesh.bench.suite import _restock
from shopmesh.envoy.edge import EdgeSettings
from shopmesh.load.shoppers import RestShopper
from shopmesh.load.stats import percentile
from shopmesh.local.mesh import start_local_mesh

RATES = (10, 25, 50)
ORDER_CPU = 0.2  # as `shopmesh bench` caps order replicas (its Plan.order_cpu)


def _unlimited(mesh) -> None:
    """No per-customer checkout limit and no load shedding: the engine is measured."""
    edge_load.disable_checkout_limit(mesh)
    if hasattr(edge_load, "shed"):  # the SQLite release had no shedding to switch off
        edge_load.shed(mesh, on=False)


def _say(step: str) -> None:
    """Progress on stderr: stdout is the one JSON line."""
    print(f"... {step}", file=sys.stderr, flush=True)


async def _checkouts(mesh, seconds: float) -> dict:
    _unlimited(mesh)
    await _restock(mesh)
    figures = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4000)) as session:
        shop = await RestShopper(mesh.edge_url, session).learn()
        await edge_load.at_rate(session, mesh, RATES[0], 2, {"checkout": 1.0}, shop)  # warm-up
        for rate in RATES:
            _say(f"checkout at {rate}/s for {seconds:g} s")
            step = await edge_load.at_rate(session, mesh, rate, seconds, {"checkout": 1.0}, shop)
            latencies = step.latencies
            figures[f"{rate}/s"] = {
                "p50_ms": round(percentile(latencies, 50) * 1000, 1),
                "p99_ms": round(percentile(latencies, 99) * 1000, 1),
                "checkouts": len(latencies),
                "outcomes": dict(step.recorder.outcomes["checkout"]),
            }
    return figures


async def _throughput(mesh, seconds: float) -> dict:
    _unlimited(mesh)
    await _restock(mesh)
    # A first round on a fresh mesh fills the pools and caches; each round places new
    # orders (order_throughput.fresh_rngs), so the measured one is no replay of it.
    await order_throughput.saturate(mesh, seconds / 2)
    rate, latencies, outcomes = await order_throughput.saturate(mesh, seconds)
    return {
        "orders_per_second": round(rate, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000),
        "answered": sum(n for k, n in outcomes.items() if order_throughput.answered(k)),
        "failed": {k: n for k, n in outcomes.items() if not order_throughput.answered(k)},
    }


def _throughput_of(work: pathlib.Path, replicas: int, cap: float | None, seconds: float) -> dict:
    counts = {"catalog": 2, "inventory": 2, "payment": 2, "order": replicas}
    with contextlib.ExitStack() as stack:
        capping = stack.enter_context(CpuCap(cap)) if cap else None
        mesh = start_local_mesh(work, replicas=counts, edge_settings=EdgeSettings(port=0))
        stack.callback(mesh.stop)  # before the cap's groups go
        for replica in mesh.replicas["order"] if capping else ():
            capping.add(replica.app.pid)
        return asyncio.run(_throughput(mesh, seconds))


def main(seconds: float) -> dict:
    work = pathlib.Path(tempfile.mkdtemp(prefix="engine-figures-"))
    try:
        return _measure(work, seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure(work: pathlib.Path, seconds: float) -> dict:
    _say("checkout through the edge (a fresh local mesh)")
    mesh = start_local_mesh(work / "mesh", edge_settings=EdgeSettings(port=0))
    try:
        result = {"checkout": asyncio.run(_checkouts(mesh, seconds)), "throughput": {}}
    finally:
        mesh.stop()
    why_not = CpuCap.available()
    for cap in (None, ORDER_CPU):
        for replicas in (1, 2):
            name = f"{replicas} order replicas" + (f", each capped at {cap} vCPU" if cap else "")
            if cap and why_not:
                result["throughput"][name] = {"not run": why_not}
                continue
            where = work / f"orders-{replicas}{'-capped' * bool(cap)}"
            _say(f"PlaceOrder throughput, {name}")
            result["throughput"][name] = _throughput_of(where, replicas, cap, seconds)
    return result


if __name__ == "__main__":
    print(json.dumps(main(float(sys.argv[1]) if len(sys.argv) > 1 else 8)))
