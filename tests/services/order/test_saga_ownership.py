"""Saga ownership between order replicas, on PostgreSQL: real processes racing for claims,
and fencing tokens refusing a stale owner's writes."""

from __future__ import annotations

import asyncio
import json
import sys
from asyncio.subprocess import PIPE

from services.order.model import Step, new_saga
from services.order.store import LeaseLost, PostgresOrderStore

from .checkout import place_request

SAGAS = 60
RACERS = 3


async def _stranded_sagas(store: PostgresOrderStore, count: int) -> list[str]:
    """Sagas in flight whose owner is gone (released leases): anyone may claim them."""
    ids = []
    for _ in range(count):
        saga, _ = await store.create(new_saga(place_request()), "crashed")
        saga.step = Step.RESERVE
        await store.save(saga, "crashed")
        await store.release(saga, "crashed")
        ids.append(saga.id)
    return ids


async def test_processes_racing_for_the_same_sagas_each_win_a_disjoint_share(databases):
    store = await PostgresOrderStore.open(databases.url("order"), lease_seconds=30)
    try:
        ids = await _stranded_sagas(store, SAGAS)
        command = [sys.executable, "-m", "tests.services.order.claimer", databases.url("order")]
        racers = [
            await asyncio.create_subprocess_exec(
                *command, f"replica-{n}", *ids, stdin=PIPE, stdout=PIPE
            )
            for n in range(RACERS)
        ]
        try:
            await asyncio.sleep(1.0)  # let each open its pool before the start signal
            for racer in racers:
                racer.stdin.write(b"go\n")
            answers = await asyncio.wait_for(
                asyncio.gather(*(racer.communicate() for racer in racers)), timeout=60
            )
        finally:
            for racer in racers:
                if racer.returncode is None:
                    racer.kill()
                    await racer.wait()
        won = [json.loads(out) for out, _ in answers]
        claimed = [order_id for share in won for order_id in share]
        assert sorted(claimed) == sorted(ids), "every saga claimed exactly once"
        for n, share in enumerate(won):
            for order_id in share:
                saga = await store.get(order_id)
                assert (
                    saga.owner == f"replica-{n}" and saga.lease_token == 2
                )  # created 1, claimed 2
    finally:
        await store.close()


async def test_a_stale_owner_is_refused_even_under_its_own_name(databases):
    """A process that stalled past its lease while another run took the saga over must
    not write, even when both runs carry the same owner name (one process, two runs)."""
    store = await PostgresOrderStore.open(databases.url("order"), lease_seconds=0.3)
    try:
        (order_id,) = await _stranded_sagas(store, 1)
        stale = await store.claim(order_id, "replica-a")
        await asyncio.sleep(0.8)  # its lease runs out
        current = await store.claim(order_id, "replica-a")
        assert current is not None and current.lease_token == stale.lease_token + 1
        stale.step = Step.CHARGE
        try:
            await store.save(stale, "replica-a")
        except LeaseLost:
            pass
        else:
            raise AssertionError("a write with a stale fencing token was accepted")
        assert (await store.get(order_id)).step is Step.RESERVE
        current.step = Step.CHARGE
        await store.save(current, "replica-a")
        assert (await store.get(order_id)).step is Step.CHARGE
    finally:
        await store.close()


async def test_a_process_renews_only_the_sagas_it_is_running(databases):
    """A saga whose run gave up (its save and release both failed, say) must come free
    when its lease ends, however long the process lives on renewing its other leases."""
    store = await PostgresOrderStore.open(databases.url("order"), lease_seconds=0.5)
    try:
        running, abandoned = await _stranded_sagas(store, 2)
        running_saga = await store.claim(running, "replica-a")
        assert await store.claim(abandoned, "replica-a") is not None
        for _ in range(4):
            await asyncio.sleep(0.25)
            assert await store.renew("replica-a", [running_saga]) == 1
        assert await store.claimable(10) == [abandoned]
        assert await store.claim(abandoned, "replica-b") is not None
        assert await store.claim(running, "replica-b") is None
    finally:
        await store.close()
