"""InventoryService semantics against a real server and a real PostgreSQL database."""

import asyncio
import uuid

import grpc
import pytest
from google.protobuf import duration_pb2

from mesh import contracts
from services.inventory.store import SEED_QUANTITY
from services.runtime.testing import connect, error_details, serving

from ..rows import query

inventory = contracts.service("inventory")
m = inventory.messages
ACTIVE, COMMITTED, RELEASED, EXPIRED = (
    m.RESERVATION_STATE_ACTIVE,
    m.RESERVATION_STATE_COMMITTED,
    m.RESERVATION_STATE_RELEASED,
    m.RESERVATION_STATE_EXPIRED,
)
KNIFE, TENT = "KIT-1002", "OUT-3001"


def rid() -> str:
    return str(uuid.uuid4())


@pytest.fixture
async def server(databases):
    env = {"SHOPMESH_INVENTORY_SWEEP_SECONDS": "0.2"}
    async with serving("inventory", databases, env) as server:
        yield server


@pytest.fixture
async def stub(server):
    async with connect(server) as channel:
        yield inventory.stub(channel)


async def stock(stub, sku):
    return (await stub.GetStock(m.GetStockRequest(sku=sku))).stock


def reserve_request(order_id, *items, ttl=None, request_id=None):
    request = m.ReserveStockRequest(
        order_id=order_id,
        items=[m.ReservationItem(sku=s, quantity=q) for s, q in items],
        request_id=request_id or rid(),
    )
    if ttl is not None:
        request.ttl.CopyFrom(duration_pb2.Duration(seconds=ttl))
    return request


async def _fails(call):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return error_details(caught.value)


def assert_invariant(level):
    assert level.on_hand == level.available + level.reserved
    assert 0 <= level.reserved <= level.on_hand


async def test_stock_is_seeded_for_every_catalog_sku(stub):
    from services.seed import SEED_PRODUCTS

    skus = [p.sku for p in SEED_PRODUCTS]
    response = await stub.BatchGetStock(m.BatchGetStockRequest(skus=skus))
    assert [s.sku for s in response.stocks] == skus
    assert {s.available for s in response.stocks} == {SEED_QUANTITY}


async def test_batch_get_names_every_unknown_sku(stub):
    request = m.BatchGetStockRequest(skus=["NOPE-1", KNIFE, "NOPE-2"])
    details = await _fails(stub.BatchGetStock(request))
    assert details.code is grpc.StatusCode.NOT_FOUND
    assert details.metadata["missing_skus"] == "NOPE-1,NOPE-2"


async def test_reserve_is_all_or_nothing_with_a_violation_per_short_sku(stub):
    request = reserve_request("o-1", (KNIFE, 5), (TENT, 101), ("OFF-2001", 150))
    details = await _fails(stub.ReserveStock(request))
    assert (details.code, details.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_STOCK",
    )
    assert details.precondition_subjects == [TENT, "OFF-2001"]
    assert (await stock(stub, KNIFE)).available == SEED_QUANTITY  # nothing held


async def test_reserve_commit_release_move_units_between_counters(stub):
    reservation = (
        await stub.ReserveStock(reserve_request("o-2", (KNIFE, 3), (TENT, 2)))
    ).reservation
    assert reservation.state == ACTIVE and [i.quantity for i in reservation.items] == [3, 2]
    level = await stock(stub, KNIFE)
    assert (level.on_hand, level.reserved, level.available, level.sold) == (100, 3, 97, 0)

    commit = m.CommitReservationRequest(reservation_id=reservation.id, request_id=rid())
    assert (await stub.CommitReservation(commit)).reservation.state == COMMITTED
    level = await stock(stub, KNIFE)
    assert (level.on_hand, level.reserved, level.available, level.sold) == (97, 0, 97, 3)
    # Committing again (a new request) returns it unchanged.
    commit.request_id = rid()
    assert (await stub.CommitReservation(commit)).reservation.state == COMMITTED
    assert (await stock(stub, KNIFE)).sold == 3

    # Releasing a committed reservation (a cancelled order) puts the sold units back.
    release = m.ReleaseReservationRequest(reservation_id=reservation.id, request_id=rid())
    assert (await stub.ReleaseReservation(release)).reservation.state == RELEASED
    level = await stock(stub, KNIFE)
    assert (level.on_hand, level.reserved, level.available, level.sold) == (100, 0, 100, 0)
    release.request_id = rid()
    assert (await stub.ReleaseReservation(release)).reservation.state == RELEASED
    assert (await stock(stub, KNIFE)).on_hand == 100
    details = await _fails(
        stub.CommitReservation(commit.__class__(reservation_id=reservation.id, request_id=rid()))
    )
    assert (details.code, details.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "RESERVATION_RELEASED",
    )


async def test_release_of_an_active_reservation_returns_held_units(stub):
    reservation = (await stub.ReserveStock(reserve_request("o-3", (KNIFE, 4)))).reservation
    release = m.ReleaseReservationRequest(reservation_id=reservation.id, request_id=rid())
    await stub.ReleaseReservation(release)
    level = await stock(stub, KNIFE)
    assert (level.reserved, level.available, level.sold) == (0, 100, 0)


async def test_reserve_is_idempotent_per_request_id_and_per_order(stub):
    request = reserve_request("o-4", (KNIFE, 2))
    first = (await stub.ReserveStock(request)).reservation
    again = (await stub.ReserveStock(request)).reservation
    other_request = (await stub.ReserveStock(reserve_request("o-4", (KNIFE, 2)))).reservation
    assert first.id == again.id == other_request.id
    assert (await stock(stub, KNIFE)).reserved == 2  # held once


async def test_reusing_a_request_id_for_another_request_fails(stub):
    request = reserve_request("o-5", (KNIFE, 1))
    await stub.ReserveStock(request)
    reused = reserve_request("o-6", (KNIFE, 1), request_id=request.request_id)
    details = await _fails(stub.ReserveStock(reused))
    assert (details.code, details.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "REQUEST_ID_REUSED",
    )


async def test_unknown_reservation_and_sku_are_not_found(stub):
    commit = m.CommitReservationRequest(reservation_id="res_nope", request_id=rid())
    assert (await _fails(stub.CommitReservation(commit))).reason == "RESERVATION_NOT_FOUND"
    details = await _fails(stub.ReserveStock(reserve_request("o-7", ("NOPE", 1))))
    assert (details.code, details.reason) == (grpc.StatusCode.NOT_FOUND, "SKU_NOT_FOUND")


async def test_sweeper_expires_reservations_after_their_ttl(databases, stub):
    reservation = (await stub.ReserveStock(reserve_request("o-8", (TENT, 7), ttl=1))).reservation
    # Watch the database, not the API: the API expires lazily, the sweeper must do it unasked.
    for _ in range(60):
        await asyncio.sleep(0.1)
        [(state, reserved)] = query(
            databases.admin_url("inventory"),
            "SELECT r.state, s.reserved FROM reservations r, stock s"
            " WHERE r.id = %s AND s.sku = %s",
            (reservation.id, TENT),
        )
        if state == EXPIRED:
            break
    assert (state, reserved) == (EXPIRED, 0)
    commit = m.CommitReservationRequest(reservation_id=reservation.id, request_id=rid())
    assert (await _fails(stub.CommitReservation(commit))).reason == "RESERVATION_EXPIRED"
    release = m.ReleaseReservationRequest(reservation_id=reservation.id, request_id=rid())
    assert (await stub.ReleaseReservation(release)).reservation.state == EXPIRED


async def test_restock_adds_once_per_request_id_and_creates_new_skus(stub):
    request = m.RestockRequest(sku="NEW-1", quantity=12, request_id=rid())
    assert (await stub.Restock(request)).stock.on_hand == 12
    assert (await stub.Restock(request)).stock.on_hand == 12
    request.request_id = rid()
    level = (await stub.Restock(request)).stock
    assert (level.on_hand, level.available) == (24, 24)


async def test_thirty_concurrent_clients_for_the_last_five_units_get_exactly_five(server):
    async with connect(server) as channel:
        await inventory.stub(channel).Restock(
            m.RestockRequest(sku="LAST", quantity=5, request_id=rid())
        )

    async def one_client(n: int):
        async with connect(server) as channel:  # a channel each: 30 real clients
            try:
                await inventory.stub(channel).ReserveStock(
                    reserve_request(f"race-{n}", ("LAST", 1))
                )
                return "reserved"
            except grpc.aio.AioRpcError as error:
                return error_details(error).reason

    outcomes = await asyncio.gather(*(one_client(n) for n in range(30)))
    assert outcomes.count("reserved") == 5
    assert outcomes.count("INSUFFICIENT_STOCK") == 25
    async with connect(server) as channel:
        level = await stock(inventory.stub(channel), "LAST")
    assert (level.on_hand, level.reserved, level.available) == (5, 5, 0)
    assert_invariant(level)
