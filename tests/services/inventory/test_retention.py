"""Inventory forgets request ids past the retention window, and only those."""

from __future__ import annotations

import asyncio
import time
import uuid

from services.inventory.store import InventoryStore
from services.runtime.retention import BATCH, retention_seconds
from services.runtime.testing import serving, test_config

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


async def test_the_running_service_prunes_on_its_own_in_batches_until_none_is_left(databases):
    admin = databases.admin_url("inventory")
    # More expired ids than one batch, and one fresh one.
    query(
        admin,
        "INSERT INTO requests (request_id, method, fingerprint, target, created_at)"
        " SELECT 'old-' || n, 'Restock', '', '', now() - interval '8 days'"
        " FROM generate_series(1, %s) AS n",
        (BATCH * 2 + 5,),
    )
    query(
        admin,
        "INSERT INTO requests (request_id, method, fingerprint, target)"
        " VALUES ('new', 'Restock', '', '')",
    )
    env = {"SHOPMESH_PRUNE_SECONDS": "3600"}  # one pass at start: batches, not periods, empty it
    async with serving("inventory", databases, env):
        deadline = time.monotonic() + 10
        while query(admin, "SELECT count(*) FROM requests") != [(1,)]:
            assert time.monotonic() < deadline, query(admin, "SELECT count(*) FROM requests")
            await asyncio.sleep(0.1)
    assert query(admin, "SELECT request_id FROM requests") == [("new",)]
