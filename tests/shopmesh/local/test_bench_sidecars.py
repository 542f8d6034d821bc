"""`shopmesh bench`'s sidecar benchmark, in miniature: the sidecars, their floor (two
minimal Envoys with the same mTLS) and ghz beside our generator, side by side.

A smoke run of the real thing on the shared mesh (its figures mean nothing at this
size): both generators send GetProduct straight to the catalog app and through
two sidecars, ours also through the floor pair and again while a spinning process
keeps one core busy, and the table has every set of rows.
"""

from __future__ import annotations

import pytest

from shopmesh.bench import sidecars

# Runs once make test has built .tools/bin (see the Makefile's test target).
pytestmark = pytest.mark.go_tools

RATE = 40
SECONDS = 1.0


async def test_the_sidecars_their_floor_and_ghz_measure_the_same_calls(mesh) -> None:
    rows = await sidecars.measure(mesh, rates=(RATE,), rounds=1, seconds=SECONDS)
    ours = [r for r in rows if r.benchmark == "GetProduct, 2 sidecars"]
    by_ghz = [r for r in rows if r.benchmark == "GetProduct, 2 sidecars (ghz)"]
    cpu = [r for r in rows if r.benchmark == "Envoy CPU"]
    labels = [sidecars.DIRECT, sidecars.FLOOR, sidecars.SIDECARS]
    assert [r.variant for r in ours] == labels * 2  # as they are, then with one core busy
    assert all("one core busy" in r.load for r in ours[3:])
    assert [r.variant for r in by_ghz] == [sidecars.DIRECT, sidecars.SIDECARS]
    for row in ours + by_ghz:
        # Every call answered, about RATE of them (ghz paces to the second).
        assert row.errors == "0", row
        assert 0.7 * RATE * SECONDS <= len(row.latencies) <= 1.3 * RATE * SECONDS, row
        assert all(0 < latency < 5 for latency in row.latencies), row
    assert "p99 ratio" in by_ghz[1].figure and "(ours " in by_ghz[1].figure
    # Each sidecar's CPU per request as a ratio to its floor's counterpart.
    assert [r.variant for r in cpu] == [
        "caller's sidecar vs outbound floor Envoy",
        "catalog's sidecar vs inbound floor Envoy",
    ]
    assert all("vCPU per 1000 req/s" in r.figure and r.met is not None for r in cpu)
