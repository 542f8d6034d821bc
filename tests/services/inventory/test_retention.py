"""Inventory forgets request ids past the retention window, and only those."""

from __future__ import annotations

import uuid

from services.inventory.store import InventoryStore
from services.runtime.retention import retention_seconds
from services.runtime.testing import test_config

from ..rows import query

WEEK = retention_seconds({})


async def test_request_ids_older_than_the_window_are_forgotten(databases):
    store = await InventoryStore.open(test_config("inventory", databases))
    try:
        old, new = str(uuid.uuid4()), str(uuid.uuid4())
        for request_id in (old, new):
            await store.restock("KIT-1001", 1, request_id, f"print-{request_id}")
        admin = databases.admin_url("inventory")
        query(
            admin,
            "UPDATE requests SET created_at = created_at - interval '8 days' WHERE request_id = %s",
            (old,),
        )
        assert await store.prune_request_ids(WEEK) == 1
        assert query(admin, "SELECT request_id FROM requests") == [(new,)]
    finally:
        await store.close()
