"""What the services promise about their PostgreSQL: its errors stay inside (UNAVAILABLE or
INTERNAL, never its own text), health follows it, no service reaches another's database,
and serialization conflicts are retried inside the store, never shown to a caller."""

import asyncio
import time
import uuid

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh import contracts
from services.runtime.migrations import Migrations
from services.runtime.postgres import Database, StoreUnavailable
from services.runtime.server import create_server
from services.runtime.testing import connect, error_details, serving, test_config
from shopmesh.local.postgres import DATABASES

from ..outage import serving_again
from ..rows import query

inventory = contracts.service("inventory")
m = inventory.messages
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# Words of PostgreSQL's and psycopg's own messages that a client must never read.
DATABASE_WORDS = (
    "FATAL",
    "permission",
    "not permitted",
    "terminating",
    "connection",
    "server closed",
    "socket",
    "psycopg",
    "relation",
    "does not exist",
    "SQL",
)


def _reserve(order_id: str, sku: str, quantity: int = 1):
    return m.ReserveStockRequest(
        order_id=order_id,
        items=[m.ReservationItem(sku=sku, quantity=quantity)],
        request_id=str(uuid.uuid4()),
    )


async def _failure(call):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return error_details(caught.value)


def _leaks(details, databases) -> list[str]:
    """Database words, names and secrets found in what the client got."""
    shown = " ".join([details.message, *details.metadata.keys(), *details.metadata.values()])
    secrets = [databases.name("inventory"), databases.postgres.password("inventory")]
    return [word for word in (*DATABASE_WORDS, *secrets) if word in shown]


async def test_an_unreachable_database_is_unavailable_without_its_own_words(databases, outage):
    async with serving("inventory", databases) as server, connect(server) as channel:
        stub = inventory.stub(channel)
        await stub.GetStock(m.GetStockRequest(sku="KIT-1002"))  # the pool is connected
        outage.begin("inventory")
        for call in (
            stub.GetStock(m.GetStockRequest(sku="KIT-1002")),  # its connection was ended
            stub.ReserveStock(_reserve("o-1", "KIT-1002")),  # no connection to be had
        ):
            details = await _failure(call)
            assert (details.code, details.reason) == (
                grpc.StatusCode.UNAVAILABLE,
                "STORE_UNAVAILABLE",
            )
            assert details.domain == "shop.inventory.v1"
            assert _leaks(details, databases) == [], details.message


async def test_any_other_database_error_is_internal_with_a_trace_id_only(databases):
    async with serving("inventory", databases) as server, connect(server) as channel:
        # Behind the service's back, a table it needs disappears: PostgreSQL says
        # 'relation "requests" does not exist'; the client must learn none of it.
        query(databases.admin_url("inventory"), "ALTER TABLE requests RENAME TO requests_gone")
        details = await _failure(inventory.stub(channel).ReserveStock(_reserve("o-1", "KIT-1002")))
    assert (details.code, details.reason) == (grpc.StatusCode.INTERNAL, "INTERNAL")
    assert details.metadata["trace_id"] in details.message
    assert _leaks(details, databases) == [], details.message
    assert "requests" not in details.message


async def test_health_is_not_serving_while_the_database_is_unreachable_and_serving_after(
    databases, outage
):
    async with serving("inventory", databases) as server, connect(server) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=inventory.full_name)
        assert (await health.Check(request)).status == SERVING
        outage.begin("inventory")
        await asyncio.sleep(0.3)  # older than the on-demand max age: the next Check probes
        # NOT_SERVING from then on, for as long as the outage lasts: the periodic probe
        # (every second) never sees it healthy.
        started = time.monotonic()
        while time.monotonic() - started < 2.5:
            assert (await health.Check(request)).status == NOT_SERVING
            await asyncio.sleep(0.3)
        outage.end()
        await serving_again(channel, inventory.full_name)
        await inventory.stub(channel).ReserveStock(_reserve("o-1", "KIT-1002"))


def test_no_role_can_connect_to_another_services_database(databases):
    postgres = databases.postgres
    roles = sorted(DATABASES)
    for owner in roles:
        database = databases.name(owner)
        # The owner with its own password gets in: the refusals below are about the role.
        with psycopg.connect(postgres.url(owner, database, postgres.password(owner))) as own:
            assert own.execute("SELECT current_user").fetchone() == (owner,)
        for other in roles:
            if other == owner:
                continue
            with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
                psycopg.connect(postgres.url(other, database, postgres.password(other)))
        # A password is required: the owner's name with another role's password is refused.
        wrong = postgres.password(next(role for role in roles if role != owner))
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(postgres.url(owner, database, wrong))
    # Nor the server's own database.
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(postgres.url("catalog", "postgres", postgres.password("catalog")))


async def test_fifty_concurrent_reservations_of_one_sku_never_see_a_conflict(databases):
    units, clients = 20, 50
    async with serving("inventory", databases) as server, connect(server) as channel:
        stub = inventory.stub(channel)
        await stub.Restock(m.RestockRequest(sku="HOT", quantity=units, request_id="r-hot"))

        async def client(n: int) -> str:
            try:
                await stub.ReserveStock(_reserve(f"o-{n}", "HOT"), timeout=60)
                return "OK"
            except grpc.aio.AioRpcError as error:
                details = error_details(error)
                return f"{details.code.name} {details.reason}"

        outcomes = await asyncio.gather(*(client(n) for n in range(clients)))
        level = (await stub.GetStock(m.GetStockRequest(sku="HOT"))).stock
    assert sorted(set(outcomes)) == ["FAILED_PRECONDITION INSUFFICIENT_STOCK", "OK"], outcomes
    assert outcomes.count("OK") == units
    assert (level.on_hand, level.reserved, level.available) == (units, units, 0)


async def test_a_service_started_before_its_database_is_reachable_waits_for_it(databases, outage):
    config = test_config("inventory", databases)  # makes the database (and lets its role in)
    outage.begin("inventory")
    starting = asyncio.create_task(create_server(config))
    await asyncio.sleep(1.5)
    assert not starting.done(), "gave up on a database that was only briefly unreachable"
    outage.end()
    server, _ = await asyncio.wait_for(starting, 15)
    try:
        async with connect(server) as channel:
            await serving_again(channel, inventory.full_name)
            await inventory.stub(channel).ReserveStock(_reserve("o-1", "KIT-1002"))
    finally:
        await server.stop(0)


async def test_a_database_that_stays_unreachable_fails_the_start_after_the_wait(databases, outage):
    url = databases.url("inventory")
    outage.begin("inventory")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cannot reach the inventory database"):
        await Database.open(
            url,
            Migrations.of_package("services.inventory"),
            name="inventory",
            wait_seconds=1.0,
        )
    assert 1.0 <= time.monotonic() - started < 5
