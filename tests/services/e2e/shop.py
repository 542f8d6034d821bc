"""The whole shop on loopback for end-to-end tests: real servers, each on its own database
of the test's (tests/databases.py), on the session's real PostgreSQL.

Catalog, inventory and payment always run in the test's own process (grpc.aio
servers on 127.0.0.1:0); the order service runs in-process too, or as separate
processes (`spawn`) for tests that kill it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2

from mesh import contracts
from services.order.store import PostgresOrderStore
from services.runtime.end_user import CLAIMS_HEADER
from services.runtime.testing import DatabaseSource, end_user_metadata, serving

UPSTREAMS = ("catalog", "inventory", "payment")

# Order service knobs that keep crash and recovery tests short.
FAST_RECOVERY = {
    "SHOPMESH_ORDER_LEASE_SECONDS": "1.5",
    "SHOPMESH_ORDER_RECOVERY_SECONDS": "0.2",
    "SHOPMESH_DRAIN_SECONDS": "1",
}

# Who the order service's callers act for unless their request names a customer
# (the default customer of tests/services/order/checkout.py).
DEFAULT_CUSTOMER = "cust-1"

catalog_messages = contracts.service("catalog").messages


class ActsForTheNamedCustomer(grpc.aio.UnaryUnaryClientInterceptor):
    """Stands in for the order sidecar, which hands the app a verified end user: each call
    carries the claims of the customer its request names (customer_id), else those of
    DEFAULT_CUSTOMER. A call that brings claims of its own keeps them."""

    async def intercept_unary_unary(self, continuation, details, request):
        given = list(details.metadata or ())
        if not any(key == CLAIMS_HEADER for key, _ in given):
            subject = getattr(request, "customer_id", "") or DEFAULT_CUSTOMER
            metadata = grpc.aio.Metadata(*given, *end_user_metadata(subject))
            details = details._replace(metadata=metadata)
        return await continuation(details, request)


inventory_messages = contracts.service("inventory").messages
payment_messages = contracts.service("payment").messages


@dataclass
class Shop:
    databases: DatabaseSource  # tests.databases.TestDatabases
    ports: dict[str, int]
    stubs: dict[str, Any] = field(default_factory=dict)
    _channels: list[grpc.aio.Channel] = field(default_factory=list)

    def order_env(self, **extra: str) -> dict[str, str]:
        """Environment of an order service that talks to this shop's upstreams."""
        env = {f"SHOPMESH_UPSTREAM_{name.upper()}": self.address(name) for name in UPSTREAMS}
        return {**env, **FAST_RECOVERY, **extra}

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def connect(self, name: str, port: int | None = None) -> Any:
        """A plain stub (no mesh interceptors: the test sees exactly what the server says);
        order's acts for the customer each request names, as its sidecar would let it."""
        interceptors = [ActsForTheNamedCustomer()] if name == "order" else None
        channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{port or self.ports[name]}", interceptors=interceptors
        )
        self._channels.append(channel)
        return contracts.service(name).stub(channel)

    def __getattr__(self, name: str) -> Any:
        if name in ("catalog", "inventory", "payment", "order"):
            if name not in self.stubs:
                self.stubs[name] = self.connect(name)
            return self.stubs[name]
        raise AttributeError(name)

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()

    @contextlib.asynccontextmanager
    async def order_store(self) -> AsyncIterator[PostgresOrderStore]:
        """The order service's own database, opened as another replica would."""
        store = await PostgresOrderStore.open(self.databases.url("order"))
        try:
            yield store
        finally:
            await store.close()

    async def sku(self, product_id: str) -> str:
        request = catalog_messages.GetProductRequest(id=product_id)
        return (await self.catalog.GetProduct(request)).product.sku

    async def stock(self, product_id: str):
        request = inventory_messages.GetStockRequest(sku=await self.sku(product_id))
        return (await self.inventory.GetStock(request)).stock

    async def leave_available(self, product_id: str, units: int) -> None:
        """Sells all but `units` of a product (a reservation committed outside any order)."""
        level = await self.stock(product_id)
        excess = level.available - units
        assert excess >= 0, f"{product_id} has only {level.available} available"
        if excess == 0:
            return
        reserved = await self.inventory.ReserveStock(
            inventory_messages.ReserveStockRequest(
                order_id=f"setup-{uuid.uuid4()}",
                items=[inventory_messages.ReservationItem(sku=level.sku, quantity=excess)],
                request_id=str(uuid.uuid4()),
            )
        )
        await self.inventory.CommitReservation(
            inventory_messages.CommitReservationRequest(
                reservation_id=reserved.reservation.id, request_id=str(uuid.uuid4())
            )
        )

    async def payment_of(self, order: order_pb2.Order) -> payment_pb2.Payment:
        request = payment_messages.GetPaymentRequest(id=order.payment_id)
        return (await self.payment.GetPayment(request)).payment


@contextlib.asynccontextmanager
async def upstreams(databases: DatabaseSource, env: dict | None = None) -> AsyncIterator[Shop]:
    """Catalog, inventory and payment serving in this process."""
    async with contextlib.AsyncExitStack() as stack:
        servers = {
            name: await stack.enter_async_context(serving(name, databases, env))
            for name in UPSTREAMS
        }
        shop = Shop(databases=databases, ports={name: s.port for name, s in servers.items()})
        stack.push_async_callback(shop.close)
        yield shop


@contextlib.asynccontextmanager
async def whole_shop(databases: DatabaseSource) -> AsyncIterator[Shop]:
    """The four services serving in this process."""
    async with (
        upstreams(databases) as shop,
        serving("order", databases, shop.order_env()) as order,
    ):
        shop.ports["order"] = order.port
        yield shop
