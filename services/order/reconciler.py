"""Accounting for every charge a saga gave up on: nothing that may have moved money is
ever only a log line.

A saga that could not learn its charge's outcome within SHOPMESH_ORDER_UNKNOWN_CHARGE_
SECONDS (payment unreachable all that time) ends its order FAILED and, in the same
write, opens a reconciliation record. This job, every SHOPMESH_ORDER_RECOVERY_SECONDS,
asks payment to close each open record's charge: CloseCharge never charges, needs no
card token, and answers for good whether the gateway captured. A capture is refunded
with the order's own refund request (same request_id, same text: a refund the saga may
have started is the same refund, never a second one); either way the record is closed.
Until payment answers, the record stays open, its attempts counted. Every replica may run it: the
calls are idempotent and closing a record is conditional.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from shop.payment.v1 import payment_pb2

from services.order.metrics import RECONCILIATIONS_OPEN, RECONCILIATIONS_RESOLVED
from services.order.orders import Orders
from services.order.saga import error_reason, refund_request
from services.order.store import Reconciliation
from services.runtime import ServerConfig

__all__ = ["reconcile", "reconcile_once"]

log = logging.getLogger("shopmesh.order.reconciler")


async def _settle(orders: Orders, record: Reconciliation) -> str | None:
    """The outcome once settled ("refunded", "nothing_owed"), None if not yet."""
    close = payment_pb2.CloseChargeRequest(request_id=record.charge_request_id)
    try:
        closed = await orders.upstreams.call("payment", "CloseCharge", close, None)
        if closed.outcome != payment_pb2.CHARGE_OUTCOME_CAPTURED:
            await orders.store.resolve_reconciliation(record.order_id, "nothing_owed", "")
            return "nothing_owed"
        saga = await orders.store.get(record.order_id)
        saga.order.payment_id = closed.payment.id
        refund = refund_request(saga)  # the very refund the saga would have asked for
        try:
            await orders.upstreams.call("payment", "Refund", refund, None)
        except grpc.aio.AioRpcError as error:
            # Nothing left to give back: refunded already (by the saga, an operator).
            if error_reason(error) != "REFUND_EXCEEDS_CAPTURE":
                raise
    except grpc.aio.AioRpcError as error:
        await orders.store.note_reconciliation_attempt(
            record.order_id, f"{error.code().name}: {error.details()}"
        )
        return None
    await orders.store.resolve_reconciliation(record.order_id, "refunded", closed.payment.id)
    return "refunded"


async def reconcile_once(orders: Orders) -> int:
    """One pass over the open records; how many it closed."""
    records = await orders.store.open_reconciliations()
    closed = 0
    for record in records:
        outcome = await _settle(orders, record)
        if outcome is not None:
            closed += 1
            RECONCILIATIONS_RESOLVED.labels(outcome).inc()
            log.warning(
                "order %s reconciled: %s", record.order_id, outcome,
                extra={"order_id": record.order_id},
            )  # fmt: skip
    # All of them, not this pass's share: a pass reads a bounded number of records.
    RECONCILIATIONS_OPEN.set(await orders.store.count_open_reconciliations())
    return closed


async def reconcile(config: ServerConfig, orders: Orders) -> None:
    while True:
        try:
            await reconcile_once(orders)
        except Exception:
            log.exception("reconciliation pass failed")
        await asyncio.sleep(orders.settings.recovery_seconds)
