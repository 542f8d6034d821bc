"""Background release of reservations whose TTL ended.

A reservation and a stock read also expire due reservations before they count
stock, and a commit refuses a reservation past its expiry, so correctness never
waits for the sweeper; it only makes sure held units come back even when nobody
calls. Every replica may sweep: expiring is one
transaction, so two sweepers never release a reservation twice.
"""

from __future__ import annotations

import asyncio
import logging

from services.inventory.store import InventoryStore
from services.runtime import ServerConfig
from services.runtime.retention import prune_periodically

__all__ = ["prune_request_ids", "sweep_expired_reservations"]

log = logging.getLogger("shopmesh.inventory.sweeper")
DEFAULT_INTERVAL_SECONDS = 1.0


async def sweep_expired_reservations(config: ServerConfig, store: InventoryStore) -> None:
    interval = float(config.env.get("SHOPMESH_INVENTORY_SWEEP_SECONDS") or DEFAULT_INTERVAL_SECONDS)
    while True:
        await asyncio.sleep(interval)
        try:
            released = await store.expire_due()
        except Exception as error:  # a store outage shows in health; keep sweeping after it
            log.warning("sweeping expired reservations failed: %s", error)
            continue
        if released:
            log.info("released expired reservations", extra={"count": released})


async def prune_request_ids(config: ServerConfig, store: InventoryStore) -> None:
    await prune_periodically(config.env, store.prune_request_ids, "inventory request ids")
