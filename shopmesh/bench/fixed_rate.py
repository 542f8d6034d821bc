"""GetProduct at a fixed arrival rate (open model) against one address, with the load
generator of `shopmesh load` (shopmesh.load.generator) and its gRPC shopper."""

from __future__ import annotations

import grpc

from shopmesh.load import generator
from shopmesh.load.recorder import Recorder
from shopmesh.load.shoppers import GrpcShopper, Knowledge

__all__ = ["get_product", "learn"]

PRODUCT_ONLY = {"product": 1.0}


async def learn(address: str) -> Knowledge:
    """The product ids to ask for, listed once from a catalog at `address`."""
    async with grpc.aio.insecure_channel(address) as channel:
        return await GrpcShopper(channel).learn()


async def get_product(
    address: str, rate: float, seconds: float, shop: Knowledge, channels: int = 1
) -> Recorder:
    """GetProduct calls arriving at `rate` per second for `seconds`, over `channels`
    connections (round robin), latency measured from each call's scheduled arrival."""
    opened = [
        # A local subchannel pool: each channel gets a connection of its own.
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(channels)
    ]
    try:
        shopper = _RoundRobin([GrpcShopper(channel) for channel in opened])
        plan = generator.LoadPlan(rate, seconds, PRODUCT_ONLY)
        return await generator.run(shopper, plan, shop, progress=None)
    finally:
        for channel in opened:
            await channel.close()


class _RoundRobin:
    def __init__(self, shoppers: list[GrpcShopper]) -> None:
        self._shoppers = shoppers
        self._next = 0

    async def product(self, rng, shop):
        shopper = self._shoppers[self._next % len(self._shoppers)]
        self._next += 1
        return await shopper.product(rng, shop)
