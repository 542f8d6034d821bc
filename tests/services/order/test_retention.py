"""The saga journal is pruned past the retention window; a saga in flight keeps its own."""

from __future__ import annotations

from services.order.model import Step, new_saga
from services.order.store import PostgresOrderStore
from services.runtime.retention import retention_seconds

from ..rows import query
from .checkout import place_request

WEEK = retention_seconds({})


async def test_old_journal_lines_of_final_orders_are_pruned_and_nothing_else(databases):
    store = await PostgresOrderStore.open(databases.url("order"), lease_seconds=30)
    try:
        final, _ = await store.create(new_saga(place_request()), "a")
        final.step = None
        final.order.status = 2  # CONFIRMED
        await store.save(final, "a")
        running, _ = await store.create(new_saga(place_request()), "a")
        running.step = Step.RESERVE
        await store.save(running, "a")
        recent, _ = await store.create(new_saga(place_request()), "a")
        recent.step = None
        recent.order.status = 2
        await store.save(recent, "a")
        admin = databases.admin_url("order")
        query(
            admin,
            "UPDATE saga_history SET at = at - interval '8 days' WHERE order_id IN (%s, %s)",
            (final.id, running.id),
        )
        assert await store.prune_history(WEEK) == 2  # both lines of the old final order
        left = query(admin, "SELECT order_id, count(*) FROM saga_history GROUP BY 1")
        assert dict(left) == {running.id: 2, recent.id: 2}
        assert await store.prune_history(WEEK) == 0
        assert {o[0] for o in query(admin, "SELECT id FROM orders")} == {
            final.id,
            running.id,
            recent.id,
        }  # fmt: skip  (orders themselves are kept: only the journal expires)
    finally:
        await store.close()
