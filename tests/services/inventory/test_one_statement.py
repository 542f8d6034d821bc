"""The usual reservation, commit and release, each one statement: the whole change when
the case is the usual one, and nothing written when it is not, so that the full
transaction decides and says why (the other tests of this package check what it says)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.inventory.store import (
    ACTIVE,
    COMMITTED,
    EXPIRED,
    RELEASED,
    SEED_QUANTITY,
    InventoryStore,
    _finish_at_once,
    _reserve_at_once,
)
from services.runtime.errors import FailedPrecondition
from services.runtime.testing import test_config

from ..rows import query, snapshot

KNIFE, TENT = "KIT-1002", "OUT-3001"
HOUR_US = 3600 * 10**6


def rid() -> str:
    return str(uuid.uuid4())


@pytest.fixture
async def store(databases):
    opened = await InventoryStore.open(test_config("inventory", databases))
    yield opened
    await opened.close()


@pytest.fixture
def admin(databases):
    return databases.admin_url("inventory")


def counters(admin, *skus):
    return query(
        admin,
        "SELECT sku, on_hand, reserved, sold FROM stock WHERE sku = ANY(%s) ORDER BY sku",
        (list(skus),),
    )


async def reserve_at_once(store, order_id, items, request_id=None):
    return await store.database.statement(
        _reserve_at_once, order_id, tuple(items), HOUR_US, request_id or rid(), "print"
    )


async def finish_at_once(store, reservation_id, state, change, request_id=None):
    method = "CommitReservation" if state == COMMITTED else "ReleaseReservation"
    remembered = (request_id or rid(), method, "print")
    return await store.database.statement(
        _finish_at_once, reservation_id, state, change, remembered
    )


async def test_the_usual_reservation_is_made_whole(store, admin):
    made = await reserve_at_once(store, "o1", [(TENT, 1), (KNIFE, 2)])
    assert made.state == ACTIVE and made.items == ((TENT, 1), (KNIFE, 2))
    assert await store.reservation(made.id) == made  # items in request order
    assert counters(admin, KNIFE, TENT) == [
        (KNIFE, SEED_QUANTITY, 2, 0),
        (TENT, SEED_QUANTITY, 1, 0),
    ]
    assert query(admin, "SELECT method, target FROM requests") == [("ReserveStock", made.id)]


@pytest.mark.parametrize(
    "case", ["too few units", "an unknown SKU", "the order has one", "request_id seen", "one due"]
)
async def test_any_other_reservation_writes_nothing(store, admin, case):
    order_id, items, request_id = "o1", [(KNIFE, 1), (TENT, 1)], rid()
    if case == "too few units":
        items = [(KNIFE, 1), (TENT, SEED_QUANTITY + 1)]
    elif case == "an unknown SKU":
        items = [(KNIFE, 1), ("NOPE-1", 1)]
    elif case == "the order has one":
        await store.reserve(order_id, [(KNIFE, 1)], HOUR_US, rid(), "print")
    elif case == "request_id seen":
        await store.reserve("o0", [(KNIFE, 1)], HOUR_US, request_id, "print")
    else:  # a reservation past its expiry, not yet expired by anyone
        await store.reserve("o0", [(KNIFE, 1)], 1, rid(), "print")
    before = snapshot(admin)

    assert await reserve_at_once(store, order_id, items, request_id) is None
    assert snapshot(admin) == before


@pytest.mark.parametrize(
    ("state", "change", "after"),
    [
        (COMMITTED, (-1, -1, 1), (SEED_QUANTITY - 2, 0, 2)),
        (RELEASED, (0, -1, 0), (SEED_QUANTITY, 0, 0)),
    ],
    ids=["commit", "release"],
)
async def test_the_usual_commit_and_release_are_made_whole(store, admin, state, change, after):
    made = await store.reserve("o1", [(KNIFE, 2)], HOUR_US, rid(), "print")
    request_id = rid()

    finished = await finish_at_once(store, made.id, state, change, request_id)
    assert finished == await store.reservation(made.id)
    assert (finished.state, finished.items, finished.expire_us) == (
        state,
        made.items,
        made.expire_us,
    )
    assert counters(admin, KNIFE) == [(KNIFE, *after)]
    assert query(admin, "SELECT target FROM requests WHERE request_id = %s", (request_id,)) == [
        (made.id,)
    ]


@pytest.mark.parametrize("case", ["committed", "past its expiry", "request_id seen", "unknown"])
async def test_any_other_commit_writes_nothing(store, admin, case):
    ttl = 1 if case == "past its expiry" else HOUR_US
    made = await store.reserve("o1", [(KNIFE, 2), (TENT, 1)], ttl, rid(), "print")
    request_id, reservation_id = rid(), made.id
    if case == "committed":
        await store.commit(made.id, rid(), "print")
    elif case == "request_id seen":
        await store.reserve("o2", [(KNIFE, 1)], HOUR_US, request_id, "print")
    elif case == "unknown":
        reservation_id = "res_unknown"
    before = snapshot(admin)

    assert await finish_at_once(store, reservation_id, COMMITTED, (-1, -1, 1), request_id) is None
    assert snapshot(admin) == before


async def test_a_release_past_expiry_not_yet_swept_ends_expired_with_its_units_back(store, admin):
    made = await store.reserve("o1", [(KNIFE, 2)], 1, rid(), "print")
    released = await store.release(made.id, rid(), "print")
    assert released.state == EXPIRED
    assert counters(admin, KNIFE) == [(KNIFE, SEED_QUANTITY, 0, 0)]


async def test_commits_and_releases_racing_on_each_reservation_leave_the_counters_true(
    store, admin
):
    """Each reservation gets a commit and a release at once: whichever comes second is
    refused or undoes the first (a release after a commit puts the units back), and
    the stock counters agree with where the reservations ended."""
    made = [
        await store.reserve(f"o{n}", [(KNIFE, 1), (TENT, 2)], HOUR_US, rid(), "print")
        for n in range(10)
    ]

    async def attempt(call, *args):
        try:
            await call(*args, rid(), "print")
        except FailedPrecondition as refused:
            assert refused.reason == "RESERVATION_RELEASED"

    await asyncio.gather(
        *(attempt(store.commit, r.id) for r in made), *(attempt(store.release, r.id) for r in made)
    )
    states = [(await store.reservation(r.id)).state for r in made]
    assert set(states) <= {COMMITTED, RELEASED}
    sold = states.count(COMMITTED)
    assert counters(admin, KNIFE, TENT) == [
        (KNIFE, SEED_QUANTITY - sold, 0, sold),
        (TENT, SEED_QUANTITY - 2 * sold, 0, 2 * sold),
    ]
