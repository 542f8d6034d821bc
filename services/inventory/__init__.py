"""The inventory service: stock per SKU and all-or-nothing reservations that never oversell.

Stock is seeded from the catalog's seed data (services.seed), 100
units per SKU, on first start. Reservations expire after their TTL (default
15 min); the sweeper releases them every SHOPMESH_INVENTORY_SWEEP_SECONDS
(default 1). When its database is unreachable, health is NOT_SERVING and RPCs
answer UNAVAILABLE until it is back. Request ids are forgotten after the retention
window (services/runtime/retention.py).
"""

from services.inventory.servicer import InventoryServicer
from services.inventory.store import InventoryStore
from services.inventory.sweeper import prune_request_ids, sweep_expired_reservations
from services.runtime import Service

__all__ = ["SERVICE"]

SERVICE = Service(
    name="inventory",
    open_store=InventoryStore.open,
    make_servicer=InventoryServicer,
    background=(sweep_expired_reservations, prune_request_ids),
)
