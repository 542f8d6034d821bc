"""kill -9 the order service in the middle of checkouts, then restart it.

Two crashes. First at the worst moment, on purpose: both order replicas run
with the saga pause knob (SHOPMESH_ORDER_PAUSE_AFTER=charge:60,
services/order/faults.py), checkouts are sent until that many orders are
charged but their stock not yet committed, and then every order replica is
SIGKILLed and restarted without the knob. Then at whatever moment: both
replicas are SIGKILLed together under a steady checkout load and restarted.

Expected: every order becomes final within the bound (the crash-time ones
CONFIRMED by recovery, since they were paid), nothing is charged twice, and
shoppers get errors only while no order replica runs.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from dataclasses import dataclass

from services.order.faults import ENV as PAUSE_AFTER
from shopmesh.chaos import ledger
from shopmesh.chaos.harness import Chaos
from shopmesh.chaos.probes import seen_healthy, until
from shopmesh.chaos.timeline import Timeline

__all__ = ["FULL", "SHORT", "Size", "scenario"]

MIX = {"checkout": 0.6, "order_lookup": 0.2, "product": 0.2}


@dataclass(frozen=True)
class Size:
    caught: int  # checkouts stopped between charge and commit by the first crash
    rate: float  # shopper arrivals per second (MIX) around the second crash
    steady: float  # seconds of load before and after the second crash
    down: float  # seconds no order replica runs
    final_bound: float


SHORT = Size(caught=4, rate=8, steady=2, down=1.5, final_bound=20)
FULL = Size(caught=20, rate=10, steady=10, down=5, final_bound=30)


def _order_replicas(chaos: Chaos):
    return list(chaos.mesh.replicas["order"])


def _kill_all(chaos: Chaos) -> None:
    for replica in _order_replicas(chaos):
        chaos.mesh.kill("order", replica.index, signal.SIGKILL)
    for replica in _order_replicas(chaos):
        replica.app.wait(10)


def _restart_all(chaos: Chaos, without: str | None = None) -> None:
    for replica in _order_replicas(chaos):
        if without:
            replica.app.env.pop(without, None)
        chaos.mesh.restart("order", replica.index)


def _in_rotation(chaos: Chaos) -> bool:
    return all(all(seen_healthy(chaos.mesh, r).values()) for r in _order_replicas(chaos))


async def _crash_after_charge(chaos: Chaos, size: Size) -> None:
    report = chaos.report
    for replica in _order_replicas(chaos):
        await chaos.act(chaos.reconfigure, "order", replica.index, {PAUSE_AFTER: "charge:60"})
    await until(lambda: _in_rotation(chaos), within=15)
    chaos.phase("checkouts paused after charge")
    shoppers = Timeline(chaos.shopper())
    chaos.timelines.append(shoppers)
    shop, rng = await chaos.knowledge(), random.Random(7)
    pending = [asyncio.create_task(shoppers.checkout(rng, shop)) for _ in range(size.caught)]

    def charged() -> list[str]:
        orders = ledger.read_orders(chaos.files.order).values()
        return [o.id for o in orders if o.step == "COMMIT"]

    await until(lambda: len(charged()) >= size.caught, within=30)
    caught = await asyncio.to_thread(charged)
    report.check(
        f"{size.caught} orders caught between charge and commit",
        len(caught) == size.caught,
        f"{len(caught)} caught",
    )

    chaos.phase("order service killed after charge, restarted")
    await chaos.act(_kill_all, chaos)
    restarted = time.monotonic()
    await chaos.act(_restart_all, chaos, PAUSE_AFTER)

    def confirmed() -> bool:
        orders = ledger.read_orders(chaos.files.order)
        return all(orders[i].final and orders[i].status == "CONFIRMED" for i in caught)

    done = await until(confirmed, within=size.final_bound)
    report.figures["restart -> caught orders CONFIRMED by recovery (s)"] = (
        "never" if done is None else f"{time.monotonic() - restarted:.1f}"
    )
    report.check("recovery confirms every order caught between charge and commit", done is not None)
    await asyncio.gather(*pending)


async def _crash_under_load(chaos: Chaos, size: Size) -> None:
    report = chaos.report
    timeline = await chaos.start_load(size.rate, MIX)
    chaos.phase("steady checkouts")
    await chaos.hold(size.steady)
    chaos.phase("order service killed under load")
    await chaos.act(_kill_all, chaos)
    await chaos.hold(size.down)
    chaos.phase("order service restarted")
    started = time.monotonic()
    await chaos.act(_restart_all, chaos)
    back = await until(lambda: _in_rotation(chaos), within=30)
    report.figures["restart -> order replicas back in rotation (s)"] = (
        "never" if back is None else f"{time.monotonic() - started:.1f}"
    )
    chaos.phase("after the crash")
    after_from = time.monotonic()
    await chaos.hold(size.steady)
    after = timeline.between(after_from, time.monotonic())
    report.check(
        "shoppers see no errors once the order service is back",
        bool(after) and all(c.ok for c in after),
        f"{sum(not c.ok for c in after)} of {len(after)} failed",
    )


async def scenario(chaos: Chaos, size: Size) -> None:
    await _crash_after_charge(chaos, size)
    await _crash_under_load(chaos, size)
    await chaos.settle(size.final_bound)
