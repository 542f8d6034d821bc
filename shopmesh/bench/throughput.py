"""Closed-loop GetProduct: as many calls as `concurrency` callers can make, to find what a
server sustains (the open model of fixed_rate.py measures latency at a given rate)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import grpc

from shopmesh.load.shoppers import GrpcShopper, Knowledge

__all__ = ["saturate"]


async def saturate(
    address: str, seconds: float, shop: Knowledge, concurrency: int = 32, channels: int = 16
) -> tuple[float, Counter]:
    """(calls per second, outcomes) with `concurrency` callers spread over `channels`
    connections of their own (SO_REUSEPORT spreads connections, not calls)."""
    opened = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(channels)
    ]
    outcomes: Counter = Counter()
    deadline = time.monotonic() + seconds

    async def caller(index: int) -> None:
        shopper, rng = GrpcShopper(opened[index % channels]), random.Random(index)
        while time.monotonic() < deadline:
            outcome, _ = await shopper.product(rng, shop)
            outcomes[outcome] += 1

    started = time.monotonic()
    try:
        await asyncio.gather(*(caller(i) for i in range(concurrency)))
    finally:
        for channel in opened:
            await channel.close()
    return sum(outcomes.values()) / (time.monotonic() - started), outcomes
