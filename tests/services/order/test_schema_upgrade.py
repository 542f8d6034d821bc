"""The order database of the first release (migration 0001 only) upgraded in place: the
stored sagas keep working under the new schema (fencing tokens, reconciliations, ...)."""

from __future__ import annotations

import psycopg
import pytest

from services.order.model import Step, new_saga
from services.order.store import MIGRATIONS, PostgresOrderStore

from .checkout import place_request


@pytest.fixture
def v1_database(databases):
    """An order database as release 1 left it: only the first migration applied."""
    postgres = databases.postgres
    name = f"{databases.prefix}_order_v1"
    url = postgres.create_database("order", name)
    yield url
    postgres.drop_database(name)


async def test_sagas_stored_by_the_previous_release_survive_the_upgrade(v1_database):
    assert len(MIGRATIONS.items) >= 2, "this test needs a previous release to upgrade from"
    previous = MIGRATIONS.upto(1)  # before fencing tokens (0002) and reconciliations (0003)
    async with await psycopg.AsyncConnection.connect(v1_database, autocommit=True) as db:
        await previous.apply(db)
        # A saga in flight as release 1 stored it (no lease_token column yet), its
        # owner's lease long expired.
        saga = new_saga(place_request())
        await db.execute(
            "INSERT INTO orders (id, customer_id, request_id, fingerprint, status, step,"
            " create_time, order_pb, request_pb, owner, lease_expires) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'old-replica', now() - interval '1 hour')",
            (
                saga.id,
                saga.order.customer_id,
                saga.request.request_id,
                saga.fingerprint,
                saga.order.status,
                Step.RESERVE.value,
                saga.order.create_time.ToNanoseconds(),
                saga.order.SerializeToString(),
                saga.request.SerializeToString(),
            ),
        )
    store = await PostgresOrderStore.open(v1_database, lease_seconds=30)  # upgrades
    try:
        assert await store.claimable(10) == [saga.id]
        claimed = await store.claim(saga.id, "new-replica")
        assert claimed.step is Step.RESERVE and claimed.lease_token == 1
        claimed.step = Step.CHARGE
        await store.save(claimed, "new-replica")
        assert (await store.get(saga.id)).step is Step.CHARGE
        duplicate, created = await store.create(new_saga(saga.request), "new-replica")
        assert not created and duplicate.id == saga.id
    finally:
        await store.close()
