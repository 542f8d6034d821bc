"""`shopmesh bench`'s sidecar benchmark, in miniature: our generator and ghz, side by side.

A smoke run of the real thing on the shared mesh (its figures mean nothing at this
size): both generators send GetProduct straight to the catalog app and through
two sidecars, and the table has both sets of rows.
"""

from __future__ import annotations

import pytest

from shopmesh.bench import sidecars

# Runs once make test has built .tools/bin (see the Makefile's test target).
pytestmark = pytest.mark.go_tools

RATE = 40
SECONDS = 1.0


async def test_ghz_measures_the_same_calls_beside_our_generator(mesh) -> None:
    rows = await sidecars.measure(mesh, rates=(RATE,), rounds=1, seconds=SECONDS)
    ours = [r for r in rows if r.benchmark == "GetProduct, 2 sidecars"]
    by_ghz = [r for r in rows if r.benchmark == "GetProduct, 2 sidecars (ghz)"]
    labels = ["direct (plaintext)", "two sidecars (mTLS)"]
    assert [r.variant for r in ours] == [r.variant for r in by_ghz] == labels
    for row in ours + by_ghz:
        # Every call answered, about RATE of them (ghz paces to the second).
        assert row.errors == "0", row
        assert 0.7 * RATE * SECONDS <= len(row.latencies) <= 1.3 * RATE * SECONDS, row
        assert all(0 < latency < 5 for latency in row.latencies), row
    assert "p99 ratio" in by_ghz[1].figure and "(ours " in by_ghz[1].figure
