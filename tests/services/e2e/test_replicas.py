"""Two order processes on one database (the local mesh's two replicas) never run one saga
twice."""

from __future__ import annotations

import asyncio
import contextlib
import time

from shop.order.v1 import order_pb2

from services.order.model import new_saga
from services.order.store import PostgresOrderStore
from services.runtime.testing import spawn
from tests.services.order.checkout import place_request

from .shop import upstreams

CUP = "kitchen-espresso-cup"
ORPHANS = 16  # sagas a crashed replica left behind
SHOPPERS = 6  # checkouts each sent to both replicas at once


async def test_two_replicas_share_sagas_without_running_one_twice(databases, tmp_path):
    async with upstreams(databases) as shop:
        before = await shop.stock(CUP)
        with contextlib.ExitStack() as stack:
            replicas = [
                stack.enter_context(spawn("order", databases, tmp_path, shop.order_env()))
                for _ in "ab"
            ]
            stubs = [shop.connect("order", replica.port) for replica in replicas]

            # Orphans: in flight, owned by a process that is gone, leases already expired.
            # Both replicas' recovery loops race to claim them.
            orphans = await _leave_orphans(databases.url("order"))
            # Meanwhile the same checkouts reach both replicas at once (each replica first
            # for half of them).
            requests = [place_request((CUP, 1), customer_id=f"twice-{n}") for n in range(SHOPPERS)]
            answers = await asyncio.gather(
                *(
                    stub.PlaceOrder(r, timeout=20)
                    for n, r in enumerate(requests)
                    for stub in (stubs if n % 2 else stubs[::-1])
                )
            )
            await _wait_until_final(shop, orphans, within=20)

        for n in range(SHOPPERS):
            pair = answers[2 * n].order, answers[2 * n + 1].order
            assert pair[0] == pair[1]  # one order per request_id, whichever replica answered
            assert pair[0].status == order_pb2.ORDER_STATUS_CONFIRMED, pair[0].failure_message

        sold = SHOPPERS + ORPHANS
        after = await shop.stock(CUP)
        assert (after.sold - before.sold, after.reserved) == (sold, 0)

        async with shop.order_store() as store:
            shoppers = [answer.order.id for answer in answers[::2]]
            for order_id in [*orphans, *shoppers]:
                history = await store.history(order_id)
                claims = [e for e in history if e.event == "CLAIM"]
                runner = claims[0].owner if claims else history[0].owner
                # Taken over at most once, and only its runner wrote it afterwards.
                assert len(claims) <= 1, history
                start = history.index(claims[0]) if claims else 0
                assert {e.owner for e in history[start:]} == {runner}, history
                if order_id in orphans:
                    assert len(claims) == 1, history  # recovered, by one replica


async def _leave_orphans(url: str) -> list[str]:
    store = await PostgresOrderStore.open(url, lease_seconds=0.001)
    try:
        ids = []
        for n in range(ORPHANS):
            saga, _ = await store.create(
                new_saga(place_request((CUP, 1), customer_id=f"orphan-{n}")), "crashed-replica"
            )
            ids.append(saga.id)
        return ids
    finally:
        await store.close()


async def _wait_until_final(shop, order_ids, within: float) -> None:
    async with shop.order_store() as store:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            sagas = [await store.get(order_id) for order_id in order_ids]
            if all(saga.final for saga in sagas):
                unconfirmed = [
                    (s.id, order_pb2.OrderStatus.Name(s.order.status), s.failure_message)
                    for s in sagas
                    if s.order.status != order_pb2.ORDER_STATUS_CONFIRMED
                ]
                assert unconfirmed == []
                return
            await asyncio.sleep(0.1)
    raise AssertionError("orphaned sagas were not finished in time")
