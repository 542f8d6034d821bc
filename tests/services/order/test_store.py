"""The saga store on a real PostgreSQL database: dedupe, ownership, leases, claims, paging.

Leases are timed by the database's clock, so the tests wait for real time to pass. A
lease that must expire is SHORT and the test sleeps for EXPIRED, well beyond it; a
lease that must still hold is LONG, so a slow machine can never make it expire early.
"""

from __future__ import annotations

import asyncio

import pytest
from shop.order.v1 import order_pb2

from services.order.model import Step, new_saga
from services.order.store import LeaseLost, PostgresOrderStore

from .checkout import place_request

SHORT, EXPIRED, LONG = 0.3, 0.8, 30.0


@pytest.fixture
async def store(databases):
    store = await PostgresOrderStore.open(databases.url("order"), lease_seconds=LONG)
    yield store
    await store.close()


@pytest.fixture
def short_leases(store) -> PostgresOrderStore:
    """The same database as `store`, but every lease it gives or renews lasts SHORT seconds."""
    return PostgresOrderStore(store.database, lease_seconds=SHORT)


async def test_create_dedupes_on_request_id(store):
    request = place_request()
    first, created = await store.create(new_saga(request), "a")
    again, created_again = await store.create(new_saga(request), "b")
    assert created and not created_again
    assert again.id == first.id and again.owner == "a"
    assert again.step is Step.PRICE and again.fingerprint == first.fingerprint


async def test_state_survives_reopening(databases):
    url = databases.url("order")
    store = await PostgresOrderStore.open(url)
    saga, _ = await store.create(new_saga(place_request()), "a")
    saga.order.reservation_id = "res-1"
    saga.step, saga.refund_due = Step.CHARGE, True
    await store.save(saga, "a")
    await store.close()

    reopened = await PostgresOrderStore.open(url)
    try:
        loaded = await reopened.get(saga.id)
    finally:
        await reopened.close()
    assert loaded == saga
    assert loaded.request.payment_method.card.token == "tok_visa"


async def test_only_the_owner_writes(store):
    saga, _ = await store.create(new_saga(place_request()), "a")
    saga.step = Step.RESERVE
    with pytest.raises(LeaseLost):
        await store.save(saga, "b")
    assert (await store.get(saga.id)).step is Step.PRICE


async def test_claim_waits_for_the_lease_to_expire(store, short_leases):
    saga, _ = await store.create(new_saga(place_request()), "a")
    assert await store.claimable(10) == []
    assert await store.claim(saga.id, "b") is None

    # The lease would now end in SHORT seconds, but a live owner keeps renewing it.
    assert await short_leases.renew("a", [saga]) == 1
    assert await store.renew("a", [saga]) == 1
    await asyncio.sleep(EXPIRED)
    assert await store.claimable(10) == []
    assert await store.claim(saga.id, "b") is None

    assert await short_leases.renew("a", [saga]) == 1  # the owner's last renewal
    await asyncio.sleep(EXPIRED)
    assert await store.claimable(10) == [saga.id]
    claimed = await store.claim(saga.id, "b")
    assert claimed is not None and claimed.owner == "b"
    saga.step = Step.RESERVE
    with pytest.raises(LeaseLost):  # the old owner is fenced off
        await store.save(saga, "a")
    events = [(entry.owner, entry.event) for entry in await store.history(saga.id)]
    assert events == [("a", "PRICE"), ("b", "CLAIM")]


async def test_released_saga_is_claimable_at_once(store):
    saga, _ = await store.create(new_saga(place_request()), "a")
    await store.release(saga, "a")
    assert await store.claimable(10) == [saga.id]
    assert (await store.claim(saga.id, "b")).owner == "b"


async def test_recovery_can_skip_sagas_by_their_next_step(store):
    pricing, _ = await store.create(new_saga(place_request()), "a")
    refunding, _ = await store.create(new_saga(place_request()), "a")
    refunding.step = Step.REFUND
    await store.save(refunding, "a")
    for saga in (pricing, refunding):
        await store.release(saga, "a")
    assert set(await store.claimable(10)) == {pricing.id, refunding.id}
    assert await store.claimable(10, skip=[Step.REFUND, Step.CHARGE]) == [pricing.id]


async def test_final_saga_is_never_claimed(short_leases):
    store = short_leases
    saga, _ = await store.create(new_saga(place_request()), "a")
    saga.fail("PRODUCT_NOT_FOUND", "no such product", None)
    await store.save(saga, "a")
    await asyncio.sleep(EXPIRED)  # any lease it had would have ended
    assert await store.claimable(10) == []
    assert await store.claim(saga.id, "b") is None
    loaded = await store.get(saga.id)
    assert loaded.owner is None and loaded.step is None
    assert loaded.order.status == order_pb2.ORDER_STATUS_FAILED
    assert loaded.order.failure_reason == "PRODUCT_NOT_FOUND"
    assert not loaded.request.HasField("payment_method")  # the token is forgotten


async def test_cancel_starts_only_on_an_idle_confirmed_order(store):
    saga, _ = await store.create(new_saga(place_request()), "a")
    assert await store.begin_cancel(saga.id, "b", "changed my mind") is None  # pending
    saga.refund_due = True
    saga.finish(order_pb2.ORDER_STATUS_CONFIRMED)
    await store.save(saga, "a")

    cancelling = await store.begin_cancel(saga.id, "b", "changed my mind")
    assert cancelling.step is Step.RELEASE and cancelling.owner == "b"
    assert cancelling.cancel_reason == "changed my mind" and cancelling.refund_due
    assert await store.begin_cancel(saga.id, "c", "twice") is None


async def test_two_stores_on_one_database_never_claim_the_same_saga(databases):
    """Two connection pools (as two replicas have) race for every saga; each is won once."""
    url = databases.url("order")
    # The winners' leases are long: a claim that expired during the race could rightly
    # be claimed again.
    first = await PostgresOrderStore.open(url, lease_seconds=LONG)
    second = await PostgresOrderStore.open(url, lease_seconds=LONG)
    try:
        ids = []
        crashed = PostgresOrderStore(first.database, lease_seconds=SHORT)
        for _ in range(30):
            saga, _ = await crashed.create(new_saga(place_request()), "crashed")
            ids.append(saga.id)
        await asyncio.sleep(EXPIRED)
        claims = await asyncio.gather(
            *(store.claim(i, name) for i in ids for store, name in ((first, "x"), (second, "y")))
        )
        winners = [claim for claim in claims if claim is not None]
        assert sorted(claim.id for claim in winners) == sorted(ids)
        for order_id in ids:
            claimed = [e for e in await first.history(order_id) if e.event == "CLAIM"]
            assert len(claimed) == 1
    finally:
        await first.close()
        await second.close()


async def test_list_orders_newest_first_by_customer(store):
    ids = []
    for n in range(5):
        saga = new_saga(place_request())
        saga.order.create_time.FromNanoseconds(1_000 + n)
        await store.create(saga, "a")
        ids.append(saga.id)
    await store.create(new_saga(place_request(customer_id="someone-else")), "a")

    page = await store.list_orders("cust-1", None, 3)
    assert [o.id for o in page] == ids[::-1][:3]
    rest = await store.list_orders("cust-1", (page[-1].create_time.ToNanoseconds(), page[-1].id), 3)
    assert [o.id for o in rest] == ids[::-1][3:]


async def test_reconciliations_that_keep_failing_never_starve_the_ones_behind_them(store):
    order_ids = []
    for _ in range(3):
        saga, _ = await store.create(new_saga(place_request()), "a")
        saga.step, saga.reconcile_charge = None, True
        await store.save(saga, "a")
        order_ids.append(saga.id)
    first, second, third = order_ids
    # A pass reads two: the two oldest, which then fail.
    assert [r.order_id for r in await store.open_reconciliations(limit=2)] == [first, second]
    for order_id in (first, second):
        await store.note_reconciliation_attempt(order_id, "UNAVAILABLE: still unknown")
    # The next pass reaches the third, not the same two again.
    assert [r.order_id for r in await store.open_reconciliations(limit=2)] == [third, first]
    await store.resolve_reconciliation(third, "nothing_owed", "")
    assert await store.count_open_reconciliations() == 2
