"""The operators' view of the shop: the `ops` identity calling the inventory through the mesh.

The checker reads stock levels the way an operator's tool would: with the mesh
client (mesh.aio_connect), proxyless mTLS with the `ops` workload certificate,
straight to the inventory replicas' sidecars, whose RBAC lets `ops` call
GetStock, BatchGetStock and Restock (shopmesh/topology.yaml) and nothing else.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import mesh
from mesh import config as mesh_config
from mesh import contracts

__all__ = ["OpsClient", "StockLevel"]

inventory = contracts.service("inventory")
BATCH = 100  # BatchGetStock takes 1 to 100 SKUs


@dataclass(frozen=True)
class StockLevel:
    """One SKU as the inventory service reports it (BatchGetStock)."""

    sku: str
    on_hand: int
    reserved: int
    available: int
    sold: int


class OpsClient:
    def __init__(self, addresses: Iterable[str], tls: mesh_config.TlsFiles) -> None:
        # One channel over every replica: round_robin spreads the calls, and a
        # replica that is down costs a retry, not a failed check.
        target = "ipv4:" + ",".join(addresses)
        config = mesh_config.MeshConfig(
            upstreams={"inventory": mesh_config.Upstream("inventory", target, tls)}
        )
        self._channel = mesh.aio_connect("inventory", config=config)
        self._stub = inventory.stub(self._channel)

    async def stock_levels(self, skus: Sequence[str]) -> dict[str, StockLevel]:
        levels = {}
        for start in range(0, len(skus), BATCH):
            request = inventory.messages.BatchGetStockRequest(skus=skus[start : start + BATCH])
            response = await self._stub.BatchGetStock(request, timeout=5)
            for s in response.stocks:
                levels[s.sku] = StockLevel(s.sku, s.on_hand, s.reserved, s.available, s.sold)
        return levels

    async def restock(self, sku: str, quantity: int) -> StockLevel:
        request = inventory.messages.RestockRequest(
            sku=sku, quantity=quantity, request_id=str(uuid.uuid4())
        )
        s = (await self._stub.Restock(request, timeout=5)).stock
        return StockLevel(s.sku, s.on_hand, s.reserved, s.available, s.sold)

    async def close(self) -> None:
        await self._channel.close()
