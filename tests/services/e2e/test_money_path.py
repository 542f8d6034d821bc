"""Money under unknown outcomes, checked where money really moves: the simulated gateway's
own ledger (its database), not only what the services answer.

Each test puts the payment service behind a gateway that fails in one precise way
(services/payment/gateway.py's test knobs), then lets it recover on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import grpc
import pytest
from shop.order.v1 import order_pb2

from services.order.model import action_request_id
from services.runtime.testing import error_details, serving
from tests.services.order.checkout import place_request

from ..rows import query
from .shop import upstreams

CUP = "kitchen-espresso-cup"
SETTLE_WITHIN = 20.0


@contextlib.asynccontextmanager
async def payment_at(databases, port: int, **knobs: str):
    """A payment server on `port` (0: any) with the gateway knobs given."""
    env = {f"SHOPMESH_GATEWAY_{k.upper()}": v for k, v in knobs.items()}
    async with serving("payment", databases, env, listen=f"127.0.0.1:{port}") as server:
        yield server


def _gateway_rows(databases, order_id: str) -> list[tuple[str, str]]:
    """(kind, idempotency key) of every gateway operation for the order's charge, and of
    every refund of a capture made for the order."""
    return query(
        databases.admin_url("payment_gateway"),
        "SELECT kind, idempotency_key FROM gateway_operations"
        " WHERE idempotency_key = %s OR metadata->>'order_id' = %s"
        " OR metadata->>'charge_reference' IN (SELECT result->>'reference'"
        "   FROM gateway_operations WHERE metadata->>'order_id' = %s)"
        " ORDER BY create_us",
        (f"charge:{action_request_id(order_id, 'charge')}", order_id, order_id),
    )


def _net_at_gateway(databases, order_id: str) -> int:
    """Captured minus refunded for the order, by the gateway's own ledger."""
    ((net,),) = query(
        databases.admin_url("payment_gateway"),
        "SELECT coalesce(sum(CASE WHEN kind = 'charge' AND (result->>'approved')::boolean"
        " THEN amount_nanos WHEN kind = 'refund' THEN -amount_nanos ELSE 0 END), 0)"
        " FROM gateway_operations WHERE metadata->>'order_id' = %s"
        " OR metadata->>'charge_reference' IN (SELECT result->>'reference'"
        "   FROM gateway_operations WHERE metadata->>'order_id' = %s)",
        (order_id, order_id),
    )
    return net


async def _final(stub, order_id: str, within: float = SETTLE_WITHIN) -> order_pb2.Order:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        order = (await stub.GetOrder(order_pb2.GetOrderRequest(id=order_id))).order
        if order.status != order_pb2.ORDER_STATUS_PENDING:
            return order
        await asyncio.sleep(0.2)
    raise AssertionError(f"order {order_id} still PENDING after {within} s")


async def _in_progress(stub, request) -> str:
    """Places the order, which must come back ORDER_IN_PROGRESS naming it; its id."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.PlaceOrder(request, timeout=3)
    details = error_details(caught.value)
    assert (details.code, details.reason) == (grpc.StatusCode.UNAVAILABLE, "ORDER_IN_PROGRESS")
    assert details.metadata.get("order_id"), "the caller must learn its order's id"
    assert "upstream connect error" not in details.message
    return details.metadata["order_id"]


async def test_an_unknown_charge_is_settled_by_closing_it_never_by_charging_again(databases):
    """The gateway unreachable at charge time: the outcome is unknown. Once it is back the
    saga closes the charge's key (nothing was taken, nothing ever will be) instead of
    sending the charge again, which would capture only to refund."""
    async with upstreams(databases) as shop, payment_at(databases, 0, down="1") as down:
        port = down.port
        env = shop.order_env(SHOPMESH_UPSTREAM_PAYMENT=f"127.0.0.1:{port}")
        async with serving("order", databases, env) as order_server:
            stub = shop.connect("order", order_server.port)
            order_id = await _in_progress(stub, place_request((CUP, 1)))
            await down.stop(0)
            async with payment_at(databases, port):
                order = await _final(stub, order_id)
    assert (order.status, order.failure_reason) == (
        order_pb2.ORDER_STATUS_FAILED,
        "PAYMENT_UNAVAILABLE",
    ), order.failure_message
    assert _gateway_rows(databases, order_id) == [
        ("closed", f"charge:{action_request_id(order_id, 'charge')}")
    ]


async def test_a_capture_whose_answer_was_lost_is_found_and_kept(databases):
    """The gateway captures, then its answer is lost: payment learns the capture by
    closing the key (the gateway's record says it was taken) and the order is CONFIRMED."""
    async with upstreams(databases) as shop, payment_at(databases, 0, lose_answers="charge") as pay:
        env = shop.order_env(SHOPMESH_UPSTREAM_PAYMENT=f"127.0.0.1:{pay.port}")
        async with serving("order", databases, env) as order_server:
            stub = shop.connect("order", order_server.port)
            placed = (await stub.PlaceOrder(place_request((CUP, 1)), timeout=10)).order
    assert placed.status == order_pb2.ORDER_STATUS_CONFIRMED, placed.failure_message
    assert [kind for kind, _ in _gateway_rows(databases, placed.id)] == ["charge"]
    assert _net_at_gateway(databases, placed.id) == placed.total.units * 10**9 + placed.total.nanos
    assert query(
        databases.admin_url("payment"), "SELECT count(*) FROM payments WHERE order_id = %s",
        (placed.id,),
    ) == [(1,)]  # fmt: skip


async def test_a_charge_unresolved_past_the_give_up_window_is_reconciled_and_refunded(
    databases,
):
    """Captured, answer lost, and the gateway unreachable for lookups until the saga gives
    up: the order ends FAILED with a reconciliation record, and once the gateway answers
    the reconciler refunds the capture. Nothing forgets the money."""
    lossy_payment = payment_at(databases, 0, lose_answers="charge", down="lookups")
    async with upstreams(databases) as shop, lossy_payment as lossy:
        port = lossy.port
        env = shop.order_env(
            SHOPMESH_UPSTREAM_PAYMENT=f"127.0.0.1:{port}",
            SHOPMESH_ORDER_UNKNOWN_CHARGE_SECONDS="1",
        )
        async with serving("order", databases, env) as order_server:
            stub = shop.connect("order", order_server.port)
            with contextlib.suppress(grpc.aio.AioRpcError):
                await stub.PlaceOrder(place_request((CUP, 1)), timeout=3)
            (order_id,) = [
                row[0] for row in query(databases.admin_url("order"), "SELECT id FROM orders")
            ]
            order = await _final(stub, order_id)
            assert order.status == order_pb2.ORDER_STATUS_FAILED
            assert _net_at_gateway(databases, order_id) > 0  # taken, and not known yet
            assert query(
                databases.admin_url("order"),
                "SELECT state FROM reconciliations WHERE order_id = %s", (order_id,),
            ) == [("open",)]  # fmt: skip
            await lossy.stop(0)
            async with payment_at(databases, port):
                await _until_reconciled(databases, order_id)
    assert _net_at_gateway(databases, order_id) == 0
    assert [kind for kind, _ in _gateway_rows(databases, order_id)] == ["charge", "refund"]


async def _until_reconciled(databases, order_id: str) -> None:
    deadline = time.monotonic() + SETTLE_WITHIN
    while time.monotonic() < deadline:
        rows = query(
            databases.admin_url("order"),
            "SELECT state FROM reconciliations WHERE order_id = %s",
            (order_id,),
        )
        if rows == [("refunded",)]:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"reconciliation of {order_id} not refunded: {rows}")


async def test_an_expired_reservation_is_never_charged_when_a_saga_resumes(databases, tmp_path):
    """A saga stopped between RESERVE and CHARGE (its process killed) and resumed after
    its reservation's TTL ran out must not charge: it fails, and the gateway never saw a
    capture for it."""
    from services.runtime.testing import spawn  # a process of its own, to kill it

    async with upstreams(databases) as shop:
        knobs = {"SHOPMESH_ORDER_RESERVATION_TTL_SECONDS": "1"}
        paused = shop.order_env(SHOPMESH_ORDER_PAUSE_AFTER="reserve:60", **knobs)
        request = place_request((CUP, 1))
        with spawn("order", databases, tmp_path, paused) as doomed:
            stub = shop.connect("order", doomed.port)
            call = asyncio.ensure_future(stub.PlaceOrder(request, timeout=60))
            order_id = await _reserved(databases)
            doomed.process.kill()
            doomed.process.wait()
            with contextlib.suppress(grpc.aio.AioRpcError):
                await call
        await asyncio.sleep(2.0)  # the reservation's TTL (1 s) runs out
        with spawn("order", databases, tmp_path, shop.order_env(**knobs)) as restarted:
            stub = shop.connect("order", restarted.port)
            order = await _final(stub, order_id)
    assert (order.status, order.failure_reason) == (
        order_pb2.ORDER_STATUS_FAILED,
        "RESERVATION_EXPIRED",
    ), order.failure_message
    charges = [k for k, _ in _gateway_rows(databases, order_id) if k == "charge"]
    assert charges == [], "a charge was sent against an expired reservation"


async def _reserved(databases) -> str:
    """The id of the order whose saga stands at CHARGE (reserved, paused)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = query(databases.admin_url("order"), "SELECT id FROM orders WHERE step = 'CHARGE'")
        if rows:
            return rows[0][0]
        await asyncio.sleep(0.05)
    raise AssertionError("the checkout never reached its pause after RESERVE")
