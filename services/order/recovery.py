"""Background jobs that keep every saga moving.

- `keep_leases`: renews the leases of the sagas this process runs, so no other
  process takes them over while they are alive (also while paused by the fault knob).
- `prune_history`: forgets the journal of final orders past the retention window
  (services/runtime/retention.py).
- `recover`: at startup and then every SHOPMESH_ORDER_RECOVERY_SECONDS, claims the
  sagas in flight that nobody runs (their process died, or a run was interrupted
  by its caller's deadline or an unreachable upstream) and runs them to the end.
  Claiming is atomic (see store.py), so two replicas never run one saga at once.
"""

from __future__ import annotations

import asyncio
import logging

from mesh import breakers
from services.order.metrics import SAGAS_RESUMED
from services.order.model import Step
from services.order.orders import Orders
from services.order.saga import Interrupted
from services.order.store import LeaseLost
from services.runtime import ServerConfig
from services.runtime.retention import prune_periodically

__all__ = ["keep_leases", "prune_history", "recover", "recover_once"]

log = logging.getLogger("shopmesh.order.recovery")

# Sagas claimed per pass, and run at once: bounded so a backlog after an outage
# does not flood the upstreams that just came back.
BATCH = 64
CONCURRENCY = 8


async def keep_leases(config: ServerConfig, orders: Orders) -> None:
    while True:
        await asyncio.sleep(orders.settings.lease_seconds / 3)
        try:
            await orders.store.renew(orders.owner, orders.runner.running())
        except Exception:
            log.exception("renewing saga leases failed")


async def recover_once(orders: Orders) -> int:
    """Claims and runs the sagas nobody runs; returns how many finished."""
    limit = asyncio.Semaphore(CONCURRENCY)

    async def resume(order_id: str) -> bool:
        async with limit:
            if orders.runner.is_running(order_id):
                return False  # its lease lapsed (renewals failed), but it runs here
            saga = await orders.store.claim(order_id, orders.owner)
            if saga is None:
                return False  # another process claimed it first
            log.info("resuming order %s at %s", order_id, saga.step, extra={"order_id": order_id})
            SAGAS_RESUMED.inc()
            try:
                await orders.runner.run(saga)
            except (Interrupted, LeaseLost) as stopped:
                log.warning("order %s not finished yet: %s", order_id, stopped)
                return False
            return True

    # A saga whose next call an open breaker would refuse cannot move; claiming it only
    # to hand it back costs two writes each, competing with live checkouts.
    blocked = [step for step in Step if breakers.rejecting(step.upstream)]
    ids = await orders.store.claimable(BATCH, skip=blocked)
    results = await asyncio.gather(*(resume(i) for i in ids), return_exceptions=True)
    for order_id, result in zip(ids, results, strict=True):
        if isinstance(result, BaseException):
            log.error("resuming order %s failed", order_id, exc_info=result)
    return sum(result is True for result in results)


async def recover(config: ServerConfig, orders: Orders) -> None:
    while True:
        try:
            await recover_once(orders)
        except Exception:
            log.exception("saga recovery pass failed")
        await asyncio.sleep(orders.settings.recovery_seconds)


async def prune_history(config: ServerConfig, orders: Orders) -> None:
    await prune_periodically(config.env, orders.store.prune_history, "saga journal lines")
