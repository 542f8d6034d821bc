"""`shopmesh bench`'s checkout benchmark, in miniature: the shop (the shared mesh) and its
floor (a mesh of trivial apps, shopmesh/bench/checkout_floor.py) side by side.

The floor must cross the same hops and make the same durable writes as a checkout:
its checkouts come back CONFIRMED through the edge, and each database holds the
floor's writes per checkout.
"""

from __future__ import annotations

import urllib.request

import aiohttp
import pytest

from shopmesh.bench import checkout, checkout_floor, edge_load
from shopmesh.envoy.edge import EdgeSettings
from shopmesh.load.shoppers import RestShopper
from shopmesh.local.mesh import LocalMesh

pytestmark = pytest.mark.timeout(240)

ONE_EACH = {"catalog": 1, "inventory": 1, "payment": 1, "order": 1}
# The databases each floor handler writes to, and how often per checkout.
WRITES_PER_DATABASE = {
    "order": checkout_floor.WRITES["order.PlaceOrder"],
    "inventory": checkout_floor.WRITES["inventory.ReserveStock"]
    + checkout_floor.WRITES["inventory.CommitReservation"],
    "payment": checkout_floor.WRITES["payment.Charge"] - 1,
    "payment_gateway": 1,
}


@pytest.fixture(scope="module")
def floor(tmp_path_factory):
    with LocalMesh(
        tmp_path_factory.mktemp("floor"), replicas=ONE_EACH, drain_seconds=1,
        edge_settings=EdgeSettings(port=0), app_command=checkout_floor.command,
    ) as running:  # fmt: skip
        yield running


def _enforce_checkout_limit(mesh: LocalMesh) -> None:
    url = f"{mesh.edge_admin.url}/runtime_modify?checkout_rate_limit.enforced=100"
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5):
        pass


def _floor_writes(floor: LocalMesh) -> dict[str, int]:
    counts = {}
    for database in WRITES_PER_DATABASE:
        with floor.postgres.admin(database) as connection:
            counts[database] = connection.execute("SELECT count(*) FROM floor_writes").fetchone()[0]
    return counts


async def test_the_shop_and_its_floor_check_out_side_by_side(mesh, floor) -> None:
    edge_load.disable_checkout_limit(floor)
    try:
        async with aiohttp.ClientSession() as session:
            shop = await RestShopper(mesh.edge_url, session).learn()
            before = _floor_writes(floor)
            rows = await checkout.measure(session, mesh, floor, shop, rounds=1, seconds=0.4)
    finally:
        _enforce_checkout_limit(mesh)
    latency = [r for r in rows if r.benchmark == "checkout via edge"]
    assert [r.variant for r in latency] == [
        f"{rate}/s, {kind}" for rate in checkout.RATES
        for kind in ("floor (same hops and writes)", "the shop")
    ]  # fmt: skip
    for row in latency:
        assert row.errors == "0", row
        assert row.latencies, row
    floor_rows = latency[0::2]
    assert all(row.figure == "floor" for row in floor_rows)
    assert all("ratio p50" in row.figure and "CONFIRMED" in row.figure for row in latency[1::2])
    checkouts = sum(len(row.latencies) for row in floor_rows)
    after = _floor_writes(floor)
    assert {db: after[db] - before[db] for db in after} == {
        db: n * checkouts for db, n in WRITES_PER_DATABASE.items()
    }
    cpu = [r for r in rows if r.benchmark == "checkout CPU"]
    assert [r.variant for r in cpu] == ["the shop", "floor"]
    assert all("ms CPU per checkout" in r.figure for r in cpu)
