"""The checkout's floor: the same hops and durable writes as a checkout, trivial handlers.

    python -m shopmesh.bench.checkout_floor <service>     # one floor app, as LocalMesh runs apps

`shopmesh bench` starts a second local mesh whose apps are these (LocalMesh's
app_command): the same edge, sidecars, mTLS, RBAC, end-user tokens, PostgreSQL
server and client library (mesh.aio_connect) as the shop's, so a checkout through
it crosses every hop a real one does and waits for the same durable commits, in
the same order, while its handlers do nothing else: no validation, no reads, no
server interceptors (a bare grpc.aio server), no saga bookkeeping. What a real
checkout costs beyond it is what the services' own work costs.

The durable writes of a checkout, one transaction each, on the critical path:

    order      create the order (PRICE is done first: it only reads the catalog)
    inventory  ReserveStock: the reservation
    order      the saga's step (RESERVE done)
    payment    Charge: the gateway's ledger (its own database), then the payment
    order      the saga's step (CHARGE done)
    inventory  CommitReservation
    order      the saga's step (COMMIT done: CONFIRMED)

A floor write is one committed INSERT (synchronous_commit on, as the services
run), in the service's own database as its role.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import grpc
import psycopg
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from psycopg_pool import AsyncConnectionPool

import mesh
from mesh import contracts
from services.seed import SEED_PRODUCTS

__all__ = ["WRITES", "command"]

catalog = contracts.service("catalog")
inventory = contracts.service("inventory")
payment = contracts.service("payment")
order = contracts.service("order")

# Durable writes per checkout, per handler (see the module docstring).
WRITES = {
    "order.PlaceOrder": 4,
    "inventory.ReserveStock": 1,
    "payment.Charge": 2,  # the gateway's ledger, then the payment
    "inventory.CommitReservation": 1,
}
_TABLE = "CREATE TABLE IF NOT EXISTS floor_writes (id bigserial PRIMARY KEY, at timestamptz)"
_PRODUCTS = {
    p.id: catalog.messages.Product(
        id=p.id,
        sku=p.sku,
        name=p.name,
        price={
            "currency_code": "USD",
            "units": p.price_nanos // 10**9,
            "nanos": p.price_nanos % 10**9,
        },
    )
    for p in SEED_PRODUCTS
}


def command(service: str) -> list[str]:
    """How LocalMesh runs the floor's app of `service`."""
    return [sys.executable, "-m", "shopmesh.bench.checkout_floor", service]


class _Ledger:
    """A service's database, written the way the floor writes: one committed INSERT."""

    def __init__(self, url: str) -> None:
        self._pool = AsyncConnectionPool(url, min_size=2, max_size=16, open=False)

    async def open(self) -> _Ledger:
        await self._pool.open(wait=True)
        async with self._pool.connection() as connection:
            await connection.execute(_TABLE)
        return self

    async def write(self, times: int = 1) -> None:
        for _ in range(times):
            async with self._pool.connection() as connection, connection.transaction():
                await connection.execute("INSERT INTO floor_writes (at) VALUES (now())")


class FloorCatalog(catalog.servicer_base):
    async def BatchGetProducts(self, request, context):
        return catalog.messages.BatchGetProductsResponse(
            products=[_PRODUCTS[i] for i in request.ids if i in _PRODUCTS]
        )


class FloorInventory(inventory.servicer_base):
    def __init__(self, ledger: _Ledger) -> None:
        self.ledger = ledger

    async def ReserveStock(self, request, context):
        await self.ledger.write(WRITES["inventory.ReserveStock"])
        reservation = inventory.messages.Reservation(
            id=f"floor-{request.order_id}",
            order_id=request.order_id,
            state=inventory.messages.RESERVATION_STATE_ACTIVE,
        )
        return inventory.messages.ReserveStockResponse(reservation=reservation)

    async def CommitReservation(self, request, context):
        await self.ledger.write(WRITES["inventory.CommitReservation"])
        reservation = inventory.messages.Reservation(
            id=request.reservation_id, state=inventory.messages.RESERVATION_STATE_COMMITTED
        )
        return inventory.messages.CommitReservationResponse(reservation=reservation)


class FloorPayment(payment.servicer_base):
    def __init__(self, gateway: _Ledger, ledger: _Ledger) -> None:
        self.gateway, self.ledger = gateway, ledger

    async def Charge(self, request, context):
        await self.gateway.write()
        await self.ledger.write(WRITES["payment.Charge"] - 1)
        return payment.messages.ChargeResponse(
            payment=payment.messages.Payment(
                id=f"floor-{request.order_id}",
                order_id=request.order_id,
                amount=request.amount,
                status=payment.messages.PAYMENT_STATUS_CAPTURED,
            )
        )


class FloorOrder(order.servicer_base):
    """The saga's hops and writes in their order, and nothing else."""

    def __init__(self, ledger: _Ledger) -> None:
        self.ledger = ledger
        self.stubs = {
            name: contracts.service(name).stub(mesh.aio_connect(name))
            for name in ("catalog", "inventory", "payment")
        }

    async def PlaceOrder(self, request, context):
        order_id = str(uuid.uuid4())
        ids = [item.product_id for item in request.items]
        products = await self.stubs["catalog"].BatchGetProducts(
            catalog.messages.BatchGetProductsRequest(ids=ids)
        )
        await self.ledger.write()  # the order, priced
        reserved = await self.stubs["inventory"].ReserveStock(
            inventory.messages.ReserveStockRequest(
                order_id=order_id,
                request_id=f"{order_id}/reserve",
                items=[
                    inventory.messages.ReservationItem(sku=p.sku, quantity=1)
                    for p in products.products
                ],
            )
        )
        await self.ledger.write()  # RESERVE done
        total = products.products[0].price if products.products else None
        charged = await self.stubs["payment"].Charge(
            payment.messages.ChargeRequest(
                order_id=order_id,
                amount=total,
                request_id=f"{order_id}/charge",
                payment_method=request.payment_method,
            )
        )
        await self.ledger.write()  # CHARGE done
        await self.stubs["inventory"].CommitReservation(
            inventory.messages.CommitReservationRequest(
                reservation_id=reserved.reservation.id, request_id=f"{order_id}/commit"
            )
        )
        await self.ledger.write()  # COMMIT done
        return order.messages.PlaceOrderResponse(
            order=order.messages.Order(
                id=order_id,
                status=order.messages.ORDER_STATUS_CONFIRMED,
                total=total,
                payment_id=charged.payment.id,
                reservation_id=reserved.reservation.id,
            )
        )


async def _servicer(service: str):
    url = os.environ.get("SHOPMESH_DATABASE_URL", "")
    if service == "catalog":
        return FloorCatalog()
    ledger = await _Ledger(url).open()
    if service == "inventory":
        return FloorInventory(ledger)
    if service == "payment":
        gateway = await _Ledger(os.environ["SHOPMESH_GATEWAY_DATABASE_URL"]).open()
        return FloorPayment(gateway, ledger)
    return FloorOrder(ledger)


async def serve(service: str) -> None:
    server = grpc.aio.server()
    contract = contracts.service(service)
    contract.add_to_server(await _servicer(service), server)
    checks = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    for name in ("", contract.full_name):
        await checks.set(name, health_pb2.HealthCheckResponse.SERVING)
    server.add_insecure_port(os.environ["SHOPMESH_LISTEN"])
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    try:
        asyncio.run(serve(sys.argv[1]))
    except (KeyboardInterrupt, psycopg.OperationalError) as stopped:
        raise SystemExit(str(stopped)) from None
