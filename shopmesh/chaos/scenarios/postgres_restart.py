"""PostgreSQL stopped cleanly and started again, under the shopper mix."""

from __future__ import annotations

from shopmesh.chaos.harness import Chaos
from shopmesh.chaos.scenarios.postgres_outage import Size, outage

__all__ = ["FULL", "SHORT", "scenario"]

SHORT = Size(rate=20, steady=2, down=3, max_detection=5, max_recovery=10, final_bound=30)
FULL = Size(rate=60, steady=15, down=15, max_detection=3, max_recovery=5, final_bound=60)


async def scenario(chaos: Chaos, size: Size) -> None:
    await outage(chaos, size, kill=False)
