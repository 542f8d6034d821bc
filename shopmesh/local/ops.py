"""The operators' view of the shop: the `ops` identity calling inventory and payment.

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

__all__ = ["OpsClient", "PaymentOps", "StockLevel"]

inventory = contracts.service("inventory")
payment = contracts.service("payment")
BATCH = 100  # BatchGetStock takes 1 to 100 SKUs


@dataclass(frozen=True)
class StockLevel:
    """One SKU as the inventory service reports it (BatchGetStock)."""

    sku: str
    on_hand: int
    reserved: int
    available: int
    sold: int


def _channel(service: str, addresses: Iterable[str], tls: mesh_config.TlsFiles):
    # One channel over every replica: round_robin spreads the calls, and a
    # replica that is down costs a retry, not a failed check.
    target = "ipv4:" + ",".join(addresses)
    config = mesh_config.MeshConfig(upstreams={service: mesh_config.Upstream(service, target, tls)})
    return mesh.aio_connect(service, config=config)


class OpsClient:
    """Stock levels and restocking, as the `ops` identity."""

    def __init__(self, addresses: Iterable[str], tls: mesh_config.TlsFiles) -> None:
        self._channel = _channel("inventory", addresses, tls)
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


class PaymentOps:
    """Refunds by hand, as the `ops` identity (what a support agent's tool does)."""

    def __init__(self, addresses: Iterable[str], tls: mesh_config.TlsFiles) -> None:
        self._channel = _channel("payment", addresses, tls)
        self._stub = payment.stub(self._channel)

    async def refund(self, payment_id: str, reason: str) -> None:
        request = payment.messages.RefundRequest(
            payment_id=payment_id, reason=reason, request_id=str(uuid.uuid4())
        )
        await self._stub.Refund(request, timeout=5)

    async def close(self) -> None:
        await self._channel.close()
