"""Checkout latency and PlaceOrder throughput of one tree of this project, for comparing
storage engines: this tree (PostgreSQL) against the last release on SQLite.

    tools/engine_figures.py [SECONDS]     # run from a tree's root with its .venv/bin/python

Prints one JSON line: checkout p50 / p99 (ms), count and outcomes through the edge
at 10, 25 and 50 per second (a fresh local mesh, the shopper's REST checkout), and
PlaceOrder throughput with 200 calls in flight against 1 and 2 order replicas
(orders/s, p50 ms, answered, failures). It uses only what both trees have
(shopmesh.bench's edge_load and order_throughput, the local mesh), so the same
file measures either. The SQLite release is commit 85f7324; to compare, in one run
with the two trees taking turns:

    git worktree add ../sqlite-release 85f7324 && make -C ../sqlite-release install
    cp shopmesh/bench/order_throughput.py ../sqlite-release/shopmesh/bench/  # (*)
    for round in 1 2; do for tree in ../sqlite-release .; do
        (cd $tree && .venv/bin/python "$OLDPWD/tools/engine_figures.py" 8)
    done; done

(*) that release had no throughput benchmark: copy this tree's, and in the copy
drop the `tokens=` argument of GrpcShopper and the edge_load.shed call (that
release had neither end users nor shedding).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import sys
import tempfile

import aiohttp

from shopmesh.bench import edge_load, order_throughput
from shopmesh.bench.suite import _restock
from shopmesh.envoy.edge import EdgeSettings
from shopmesh.load.shoppers import RestShopper
from shopmesh.load.stats import percentile
from shopmesh.local.mesh import start_local_mesh

RATES = (10, 25, 50)


def _unlimited(mesh) -> None:
    """No per-customer checkout limit and no load shedding: the engine is measured."""
    edge_load.disable_checkout_limit(mesh)
    if hasattr(edge_load, "shed"):  # the SQLite release had no shedding to switch off
        edge_load.shed(mesh, on=False)


async def _checkouts(mesh, seconds: float) -> dict:
    _unlimited(mesh)
    await _restock(mesh)
    figures = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4000)) as session:
        shop = await RestShopper(mesh.edge_url, session).learn()
        for rate in RATES:
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
    rate, latencies, outcomes = await order_throughput.saturate(mesh, seconds)
    return {
        "orders_per_second": round(rate, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000),
        "answered": sum(n for k, n in outcomes.items() if k.startswith("checkout ")),
        "failed": {k: n for k, n in outcomes.items() if not k.startswith("checkout ")},
    }


def main(seconds: float) -> dict:
    work = pathlib.Path(tempfile.mkdtemp(prefix="engine-figures-"))
    edge = EdgeSettings(port=0)
    mesh = start_local_mesh(work / "mesh", edge_settings=edge)
    try:
        result = {"checkout": asyncio.run(_checkouts(mesh, seconds)), "throughput": {}}
    finally:
        mesh.stop()
    for replicas in (1, 2):
        counts = {"catalog": 2, "inventory": 2, "payment": 2, "order": replicas}
        mesh = start_local_mesh(work / f"orders-{replicas}", replicas=counts, edge_settings=edge)
        try:
            result["throughput"][f"{replicas} order replicas"] = asyncio.run(
                _throughput(mesh, seconds)
            )
        finally:
            mesh.stop()
    return result


if __name__ == "__main__":
    print(json.dumps(main(float(sys.argv[1]) if len(sys.argv) > 1 else 8)))
