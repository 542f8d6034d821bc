"""Two inventory processes on one database never oversell; losing the database takes the
service down (NOT_SERVING, UNAVAILABLE) until it is back."""

import asyncio
import uuid

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh import contracts
from services.runtime.testing import connect, error_details, serving, spawn

from ..outage import serving_again

inventory = contracts.service("inventory")
m = inventory.messages


def _reserve(order_id: str, sku: str):
    return m.ReserveStockRequest(
        order_id=order_id,
        items=[m.ReservationItem(sku=sku, quantity=1)],
        request_id=str(uuid.uuid4()),
    )


RACERS = 100  # concurrent reservations, split over the two processes, for the last 5 units


async def test_two_server_processes_racing_for_the_last_units_never_oversell(databases, tmp_path):
    async with serving("inventory", databases) as local:
        with spawn("inventory", databases, tmp_path) as other:  # a second process, same database
            async with connect(local) as channel:
                restock = m.RestockRequest(sku="LAST", quantity=5, request_id=str(uuid.uuid4()))
                await inventory.stub(channel).Restock(restock)

            async def client(n: int, port: int):
                async with connect(port) as channel:
                    try:
                        await inventory.stub(channel).ReserveStock(_reserve(f"o-{n}", "LAST"))
                        return True
                    except grpc.aio.AioRpcError as error:
                        assert error_details(error).reason == "INSUFFICIENT_STOCK"
                        return False

            ports = [local.port, other.port]
            won = await asyncio.gather(*(client(n, ports[n % 2]) for n in range(RACERS)))
            async with connect(other.port) as channel:
                level = (
                    await inventory.stub(channel).GetStock(m.GetStockRequest(sku="LAST"))
                ).stock
    assert sum(won) == 5
    assert (level.on_hand, level.reserved, level.available) == (5, 5, 0)


async def test_lost_database_makes_health_not_serving_and_rpcs_unavailable(databases, outage):
    async with serving("inventory", databases) as server, connect(server) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=inventory.full_name)
        stub = inventory.stub(channel)
        outage.begin("inventory")
        await asyncio.sleep(0.3)
        assert (await health.Check(request)).status == health_pb2.HealthCheckResponse.NOT_SERVING
        try:
            await stub.ReserveStock(_reserve("o-f", "KIT-1002"))
            raise AssertionError("a reservation went through a broken store")
        except grpc.aio.AioRpcError as error:
            details = error_details(error)
        assert (details.code, details.reason) == (grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE")
        outage.end()
        await serving_again(channel, inventory.full_name)
        await stub.ReserveStock(_reserve("o-f", "KIT-1002"))
