"""The open-model driver: arrivals at a fixed rate, whatever the latency.

A closed-loop client (send, wait, send) slows down when the system does and so
hides latency. Here each arrival is scheduled at start + i/rate and measured from
that scheduled instant, so a stalled system shows up as latency (and, past the
in-flight cap, as dropped arrivals) instead of as a lower request rate.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from shopmesh.load.recorder import Recorder
from shopmesh.load.shoppers import Knowledge

# The shopper mix: browse/list ~60 %, search ~20 %, product detail, checkout ~5 %, lookups.
DEFAULT_MIX = {
    "browse": 0.60,
    "search": 0.20,
    "product": 0.12,
    "checkout": 0.05,
    "order_lookup": 0.03,
}


@dataclass(frozen=True)
class LoadPlan:
    rate: float  # arrivals per second
    duration: float  # seconds
    mix: dict[str, float]
    seed: int = 1
    max_in_flight: int = 2000

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.duration <= 0:
            raise ValueError("rate and duration must be positive")
        if not self.mix or any(w < 0 for w in self.mix.values()):
            raise ValueError("the mix needs at least one operation with a weight >= 0")


async def run(
    shopper,
    plan: LoadPlan,
    shop: Knowledge | None = None,
    progress: TextIO | None = sys.stderr,
    clock: Callable[[], float] = time.monotonic,
) -> Recorder:
    shop = shop or await shopper.learn()
    rng = random.Random(plan.seed)
    operations = list(plan.mix)
    weights = [plan.mix[o] for o in operations]
    recorder = Recorder()
    in_flight: set[asyncio.Task] = set()

    async def one(operation: str, scheduled: float) -> None:
        outcome, note = await getattr(shopper, operation)(rng, shop)
        recorder.record(operation, clock() - scheduled, outcome)
        if note:
            recorder.notes[note] += 1

    started = clock()
    total = int(plan.rate * plan.duration)
    next_progress = started + 1
    for i in range(total):
        scheduled = started + i / plan.rate
        delay = scheduled - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(in_flight) >= plan.max_in_flight:
            recorder.dropped += 1
            continue
        operation = rng.choices(operations, weights)[0]
        task = asyncio.create_task(one(operation, scheduled))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        if progress and clock() >= next_progress:
            next_progress += 1
            print("\r" + recorder.progress_line(len(in_flight)), end="", file=progress, flush=True)
    if in_flight:
        await asyncio.wait(in_flight)
    if progress:
        print("\r" + recorder.progress_line(0), file=progress, flush=True)
    return recorder
