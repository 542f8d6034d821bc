"""The saga store on real SQLite files: dedupe, ownership, leases, claims, paging."""

from __future__ import annotations

import asyncio

import pytest
from shop.order.v1 import order_pb2

from services.order.model import Step, new_saga
from services.order.store import LeaseLost, SqliteOrderStore

from .checkout import place_request


class Clock:
    """Wall time the test moves by hand, so lease expiry needs no sleeping."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path, clock):
    store = await SqliteOrderStore.open(tmp_path / "order.sqlite3", lease_seconds=10, clock=clock)
    yield store
    await store.close()


async def test_create_dedupes_on_request_id(store):
    request = place_request()
    first, created = await store.create(new_saga(request), "a")
    again, created_again = await store.create(new_saga(request), "b")
    assert created and not created_again
    assert again.id == first.id and again.owner == "a"
    assert again.step is Step.PRICE and again.fingerprint == first.fingerprint


async def test_state_survives_reopening(tmp_path, clock):
    path = tmp_path / "order.sqlite3"
    store = await SqliteOrderStore.open(path, clock=clock)
    saga, _ = await store.create(new_saga(place_request()), "a")
    saga.order.reservation_id = "res-1"
    saga.step, saga.refund_due = Step.CHARGE, True
    await store.save(saga, "a")
    await store.close()

    reopened = await SqliteOrderStore.open(path, clock=clock)
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


async def test_claim_waits_for_the_lease_to_expire(store, clock):
    saga, _ = await store.create(new_saga(place_request()), "a")
    assert await store.claimable(10) == []
    assert await store.claim(saga.id, "b") is None

    clock.now += 9
    assert await store.renew("a") == 1  # a live owner keeps it
    clock.now += 9
    assert await store.claim(saga.id, "b") is None

    clock.now += 2
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
    await store.release(saga.id, "a")
    assert await store.claimable(10) == [saga.id]
    assert (await store.claim(saga.id, "b")).owner == "b"


async def test_recovery_can_skip_sagas_by_their_next_step(store):
    pricing, _ = await store.create(new_saga(place_request()), "a")
    refunding, _ = await store.create(new_saga(place_request()), "a")
    refunding.step = Step.REFUND
    await store.save(refunding, "a")
    for saga in (pricing, refunding):
        await store.release(saga.id, "a")
    assert set(await store.claimable(10)) == {pricing.id, refunding.id}
    assert await store.claimable(10, skip=[Step.REFUND, Step.CHARGE]) == [pricing.id]


async def test_final_saga_is_never_claimed(store, clock):
    saga, _ = await store.create(new_saga(place_request()), "a")
    saga.fail("PRODUCT_NOT_FOUND", "no such product", None)
    await store.save(saga, "a")
    clock.now += 60
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


async def test_two_stores_on_one_file_never_claim_the_same_saga(tmp_path, clock):
    """Two connections (as two replicas have) race for every saga; each is won once."""
    path = tmp_path / "order.sqlite3"
    first = await SqliteOrderStore.open(path, lease_seconds=10, clock=clock)
    second = await SqliteOrderStore.open(path, lease_seconds=10, clock=clock)
    try:
        ids = []
        for _ in range(30):
            saga, _ = await first.create(new_saga(place_request()), "crashed")
            ids.append(saga.id)
        clock.now += 11
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
