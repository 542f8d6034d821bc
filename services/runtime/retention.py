"""How long idempotency keys and journals are kept, and the job that prunes them.

A request_id is remembered so that a retry of the same request is answered, not
done again. Retries come within seconds (client deadlines), or minutes at most
(a saga resuming after an outage gives up learning a charge's outcome after
SHOPMESH_ORDER_UNKNOWN_CHARGE_SECONDS, 300 s by default): keeping keys for
SHOPMESH_RETENTION_HOURS (default 168, a week) covers every retry horizon with a
wide margin, and past it they are deleted, so the tables stop growing with the
traffic. What is money or an order (payments, refunds, orders, reconciliation
records) is kept: only keys and journals expire.

Each service that keeps such data runs `prune_periodically` with its own prune
function; every SHOPMESH_PRUNE_SECONDS (default 3600) it deletes what is older
than the window, in batches, so one pass never holds many rows locked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

__all__ = ["BATCH", "prune_periodically", "retention_seconds"]

log = logging.getLogger("shopmesh.retention")

DEFAULT_HOURS = 168.0
BATCH = 1000


def retention_seconds(env: Mapping[str, str]) -> float:
    raw = env.get("SHOPMESH_RETENTION_HOURS") or str(DEFAULT_HOURS)
    try:
        hours = float(raw)
    except ValueError:
        raise ValueError(f"SHOPMESH_RETENTION_HOURS must be a number, not {raw!r}") from None
    if hours < 1:
        raise ValueError("SHOPMESH_RETENTION_HOURS must be at least 1 (retries must be answered)")
    return hours * 3600


async def prune_periodically(
    env: Mapping[str, str], prune: Callable[[float], Awaitable[int]], what: str
) -> None:
    """Calls `prune(older_than_seconds)` (it returns how many rows it removed) every
    SHOPMESH_PRUNE_SECONDS until cancelled, again while a pass fills whole batches."""
    keep = retention_seconds(env)
    period = float(env.get("SHOPMESH_PRUNE_SECONDS") or 3600)
    while True:
        try:
            while (removed := await prune(keep)) >= BATCH:
                log.info("pruned %d %s", removed, what)
            if removed:
                log.info("pruned %d %s", removed, what)
        except Exception as error:  # an outage shows in health; prune again next time
            log.warning("pruning %s failed: %s", what, error)
        await asyncio.sleep(period)
