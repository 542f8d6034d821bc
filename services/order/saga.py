"""The checkout saga: one upstream action per step, saved before the next step starts.

Forward steps that fail switch the saga to compensation (see model.Step);
compensation steps that cannot reach their upstream raise `Interrupted` and
leave the saga in flight for recovery, because an order may only end FAILED
once nothing is held or charged.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from shop.catalog.v1 import catalog_pb2
from shop.inventory.v1 import inventory_pb2
from shop.order.v1 import order_pb2
from shop.payment.v1 import payment_pb2

import mesh
from mesh import breakers
from services.order.metrics import ORDERS_FINISHED
from services.order.model import Saga, Step, action_request_id
from services.order.pricing import PricingError, price_cart
from services.order.settings import OrderSettings
from services.order.store import LeaseLost, OrderStore
from services.order.upstreams import Upstreams

__all__ = ["PRODUCT_NOT_FOUND", "Interrupted", "SagaRunner", "refund_request"]

log = logging.getLogger("shopmesh.order.saga")

# Codes after which the upstream surely changed nothing, so there is nothing to undo.
# After any other code (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, ...) the outcome is unknown.
NOTHING_DONE = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.ABORTED,
    }
)


# The failure reason of a cart naming a product the catalog does not have.
PRODUCT_NOT_FOUND = "PRODUCT_NOT_FOUND"


def refund_request(saga: Saga) -> payment_pb2.RefundRequest:
    """The one refund an order ever asks for (the saga's, or the reconciler's on its
    behalf): same request_id and same text, so payment takes them for one request."""
    why = saga.cancel_reason or saga.failure_reason
    return payment_pb2.RefundRequest(
        payment_id=saga.order.payment_id,
        reason=f"order {saga.id}: {why}"[:200],
        request_id=action_request_id(saga.id, "refund"),
    )


def _callers_deadline_passed(deadline: float | None) -> bool:
    return deadline is not None and deadline <= time.monotonic()


class Interrupted(Exception):
    """The saga cannot go on now (the caller's deadline passed, or an upstream it needs to
    undo a failed checkout is unreachable). It stays in flight and recovery resumes it."""


def _nothing_done(error: grpc.RpcError) -> bool:
    """The upstream surely changed nothing: it refused, it said so (ErrorInfo metadata
    outcome=NOTHING_DONE), or the call was never sent (an open circuit breaker, a
    deadline spent before sending, no replica reachable)."""
    info = error_info(error)
    return (
        error.code() in NOTHING_DONE
        or mesh.never_sent(error)
        or (info is not None and info.metadata.get("outcome") == "NOTHING_DONE")
    )


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo of a failed call (our services put one in every error), or None."""
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        return None
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    return None


def error_reason(error: grpc.RpcError) -> str:
    """The ErrorInfo reason of a failed call, or "" if it carries none."""
    info = error_info(error)
    return info.reason if info is not None else ""


def _describe(service: str, method: str, error: grpc.aio.AioRpcError) -> str:
    """What went wrong, fit for the shopper: our services' own messages (they carry an
    ErrorInfo and never internals) and our mesh client's (an open breaker), but only
    the code of anything else (a proxy's or a transport's text says nothing to a
    shopper and may say too much)."""
    info = error_info(error)
    if mesh.never_sent(error):  # refused by this process's own mesh client: its words
        return f"{service} {method} not sent: {error.details()}"
    if info is None:
        return f"{service} {method} failed: {error.code().name}"
    return f"{service} {method} failed: {error.code().name} {info.reason}: {error.details()}"


def _failure_reason(service: str, error: grpc.aio.AioRpcError) -> str:
    suffix = "REJECTED" if error.code() in NOTHING_DONE else "UNAVAILABLE"
    return f"{service.upper()}_{suffix}"


class SagaRunner:
    """Advances sagas this process owns, saving every step before the next one runs."""

    def __init__(
        self,
        store: OrderStore,
        upstreams: Upstreams,
        owner: str,
        settings: OrderSettings | None = None,
    ) -> None:
        self.store = store
        self.upstreams = upstreams
        self.owner = owner
        self.settings = settings or OrderSettings()
        # Sagas running in this process, by id. A lease names the process, not the run,
        # so this is what keeps two runs here (a request and recovery) off one saga;
        # it is also the set whose leases the process renews (and no other).
        self._running: dict[str, Saga] = {}
        self._steps = {
            Step.PRICE: self.price,
            Step.RESERVE: self._reserve,
            Step.CHARGE: self._charge,
            Step.COMMIT: self._commit,
            Step.RELEASE: self._release,
            Step.REFUND: self._refund,
        }

    async def run(self, saga: Saga, deadline: float | None = None) -> Saga:
        """Runs a saga this process holds the lease of until it is final.

        `deadline` (time.monotonic()) is the caller's: no upstream call outlives
        it. Raises Interrupted (lease given up, so recovery resumes the saga
        soon) or LeaseLost (another run has it now).
        """
        if saga.id in self._running:
            raise LeaseLost(f"order {saga.id} is already running in this process")
        self._running[saga.id] = saga
        try:
            while saga.step is not None:
                done = saga.step
                await self._steps[done](saga, deadline)
                saga.touch()
                await self.store.save(saga, self.owner)
                log.info(
                    "order %s: %s done, next %s",
                    saga.id,
                    done,
                    saga.step or order_pb2.OrderStatus.Name(saga.order.status),
                    extra={"order_id": saga.id},
                )
                pause = self.settings.pause_after
                if pause and pause.step is done and saga.step:
                    log.warning("order %s: pausing after %s (fault knob)", saga.id, done)
                    await asyncio.sleep(pause.seconds)
        except BaseException:
            # Hand the saga back at once rather than when the lease runs out (which
            # is what happens anyway if even this fails, e.g. while shutting down).
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.release(saga, self.owner))
            raise
        finally:
            self._running.pop(saga.id, None)
        # Final now: by its last step here, or already when stored (failed at pricing).
        status = order_pb2.OrderStatus.Name(saga.order.status)
        ORDERS_FINISHED.labels(status, saga.order.failure_reason).inc()
        return saga

    def running(self) -> list[Saga]:
        """The sagas this process is running now."""
        return list(self._running.values())

    def is_running(self, order_id: str) -> bool:
        """Whether this process runs the saga now: it must not claim it again (a claim
        takes a new fencing token, which would void the running run's writes)."""
        return order_id in self._running

    async def _call(self, service: str, method: str, request, deadline: float | None):
        if deadline is not None and deadline <= time.monotonic():
            raise Interrupted("the caller's deadline has passed")
        try:
            return await self.upstreams.call(service, method, request, deadline)
        except grpc.aio.AioRpcError as error:
            if deadline is not None and deadline <= time.monotonic():
                raise Interrupted("the caller's deadline has passed") from error
            raise

    # Forward steps.

    async def price(self, saga: Saga, deadline: float | None) -> None:
        """The PRICE step. It only reads the catalog, so Orders.place runs it before a
        checkout's saga is first stored: stored sagas start at RESERVE or are final."""
        items = saga.request.items
        request = catalog_pb2.BatchGetProductsRequest(ids=[item.product_id for item in items])
        try:
            response = await self._call("catalog", "BatchGetProducts", request, deadline)
        except grpc.aio.AioRpcError as error:
            reason = (
                PRODUCT_NOT_FOUND
                if error.code() == grpc.StatusCode.NOT_FOUND
                else _failure_reason("catalog", error)
            )
            saga.fail(reason, _describe("catalog", "BatchGetProducts", error), None)
            return
        try:
            lines, total = price_cart(items, response.products)
        except PricingError as error:
            saga.fail(error.reason, error.message, None)
            return
        del saga.order.lines[:]
        saga.order.lines.extend(lines)
        saga.order.total.CopyFrom(total)
        saga.step = Step.RESERVE

    def _reserve_request(self, saga: Saga) -> inventory_pb2.ReserveStockRequest:
        units: collections.Counter[str] = collections.Counter()
        for line in saga.order.lines:
            units[line.sku] += line.quantity
        return inventory_pb2.ReserveStockRequest(
            order_id=saga.id,
            items=[inventory_pb2.ReservationItem(sku=sku, quantity=n) for sku, n in units.items()],
            ttl=duration_pb2.Duration(seconds=max(1, round(self.settings.reservation_ttl_seconds))),
            request_id=action_request_id(saga.id, "reserve"),
        )

    async def _reserve(self, saga: Saga, deadline: float | None) -> None:
        # Holding stock for steps whose calls an open breaker would refuse only costs
        # writes and keeps the shopper waiting: fail now, before anything is held.
        for upstream in dict.fromkeys(step.upstream for step in (Step.CHARGE, Step.COMMIT)):
            if breakers.rejecting(upstream):
                message = f"checkout not attempted: circuit breaker '{upstream}' is open"
                saga.fail(f"{upstream.upper()}_UNAVAILABLE", message, None)
                return
        try:
            response = await self._call(
                "inventory", "ReserveStock", self._reserve_request(saga), deadline
            )
        except grpc.aio.AioRpcError as error:
            message = _describe("inventory", "ReserveStock", error)
            if error_reason(error) == "INSUFFICIENT_STOCK":
                saga.fail("INSUFFICIENT_STOCK", message, None)
            elif _nothing_done(error):
                saga.fail(_failure_reason("inventory", error), message, None)
            else:  # the stock may be held: find out and give it back
                saga.fail(_failure_reason("inventory", error), message, Step.RELEASE)
            return
        saga.order.reservation_id = response.reservation.id
        saga.step = Step.CHARGE
        # Saved with the step, before the charge is sent: from now on undoing refunds.
        saga.refund_due = True

    def _charge_request(self, saga: Saga) -> payment_pb2.ChargeRequest:
        return payment_pb2.ChargeRequest(
            order_id=saga.id,
            amount=saga.order.total,
            payment_method=saga.request.payment_method,
            request_id=action_request_id(saga.id, "charge"),
        )

    async def _reservation_active(self, saga: Saga, deadline: float | None) -> bool:
        """Whether the order's stock is still held. Asking ReserveStock again under the
        same request_id changes nothing: it answers the reservation as it is now."""
        response = await self._call(
            "inventory", "ReserveStock", self._reserve_request(saga), deadline
        )
        return response.reservation.state == inventory_pb2.RESERVATION_STATE_ACTIVE

    async def _charge(self, saga: Saga, deadline: float | None) -> None:
        if saga.resumed:
            # A saga picked up again may have waited past its reservation's TTL: charging
            # then would only be refunded at COMMIT. Charge only against held stock.
            try:
                active = await self._reservation_active(saga, deadline)
            except grpc.aio.AioRpcError as error:
                # refund_due stays: a run before the crash may have sent the charge;
                # compensation closes it and refunds what it finds.
                message = _describe("inventory", "ReserveStock", error)
                saga.fail(_failure_reason("inventory", error), message, Step.RELEASE)
                return
            if not active:
                saga.fail(
                    "RESERVATION_EXPIRED",
                    "the stock was no longer held when the checkout resumed",
                    Step.RELEASE,
                )
                return
        try:
            response = await self._call("payment", "Charge", self._charge_request(saga), deadline)
        except grpc.aio.AioRpcError as error:
            # Unknown outcome: refund_due stays, and REFUND settles it with CloseCharge.
            saga.refund_due = not _nothing_done(error)
            if error_reason(error) == "CHARGE_CLOSED":  # payment settled it: nothing taken
                message = "the payment could not be taken now; nothing was charged"
                saga.fail("PAYMENT_UNAVAILABLE", message, Step.RELEASE)
                return
            message = _describe("payment", "Charge", error)
            saga.fail(_failure_reason("payment", error), message, Step.RELEASE)
            return
        payment = response.payment
        saga.order.payment_id = payment.id
        if payment.status == payment_pb2.PAYMENT_STATUS_DECLINED:
            saga.refund_due = False
            why = payment_pb2.DeclineReason.Name(payment.decline_reason)
            saga.fail("PAYMENT_DECLINED", f"the payment was declined: {why}", Step.RELEASE)
            return
        saga.step = Step.COMMIT

    async def _commit(self, saga: Saga, deadline: float | None) -> None:
        request = inventory_pb2.CommitReservationRequest(
            reservation_id=saga.order.reservation_id,
            request_id=action_request_id(saga.id, "commit"),
        )
        try:
            await self._call("inventory", "CommitReservation", request, deadline)
        except grpc.aio.AioRpcError as error:
            reason = (
                "RESERVATION_EXPIRED"
                if error.code() == grpc.StatusCode.FAILED_PRECONDITION
                else _failure_reason("inventory", error)
            )
            saga.fail(reason, _describe("inventory", "CommitReservation", error), Step.RELEASE)
            return
        saga.finish(order_pb2.ORDER_STATUS_CONFIRMED)

    # Compensation steps: they never give up, they are interrupted and resumed.

    async def _compensation_call(self, service: str, method: str, request, deadline: float | None):
        """A call that must succeed eventually; None if the upstream says there is nothing
        to do (a refusal that changed nothing)."""
        try:
            return await self._call(service, method, request, deadline)
        except grpc.aio.AioRpcError as error:
            if error.code() in NOTHING_DONE:
                log.warning("%s: nothing to undo", _describe(service, method, error))
                return None
            raise Interrupted(_describe(service, method, error)) from error

    async def _release(self, saga: Saga, deadline: float | None) -> None:
        if not saga.order.reservation_id:
            # ReserveStock's outcome is unknown. Asking again for the same order returns
            # the reservation if there is one (or holds it now, and it is released below).
            response = await self._compensation_call(
                "inventory", "ReserveStock", self._reserve_request(saga), deadline
            )
            if response is not None:
                saga.order.reservation_id = response.reservation.id
        if saga.order.reservation_id:
            request = inventory_pb2.ReleaseReservationRequest(
                reservation_id=saga.order.reservation_id,
                request_id=action_request_id(saga.id, "release"),
            )
            await self._compensation_call("inventory", "ReleaseReservation", request, deadline)
        if saga.refund_due:
            saga.step = Step.REFUND
        else:
            self._end(saga)

    async def _refund(self, saga: Saga, deadline: float | None) -> None:
        if not saga.order.payment_id:
            # Charge's outcome is unknown. Closing its request_id settles it without
            # charging: either the gateway had captured (and the payment comes back, to
            # be refunded below), or nothing was taken and nothing ever will be. Only an
            # answer settles it: a refused CloseCharge (an older payment without it, a
            # permission) says nothing about the charge, so the saga waits, as for an
            # unreachable payment, and past the give-up window hands it to reconciliation.
            close = payment_pb2.CloseChargeRequest(request_id=action_request_id(saga.id, "charge"))
            try:
                response = await self._call("payment", "CloseCharge", close, deadline)
            except grpc.aio.AioRpcError as error:
                stopped = Interrupted(_describe("payment", "CloseCharge", error))
                if _callers_deadline_passed(deadline) or not self._give_up_on_charge(saga):
                    raise stopped from error
                return
            except Interrupted:
                raise  # the caller's deadline, before anything was sent
            if response.outcome != payment_pb2.CHARGE_OUTCOME_CAPTURED:
                saga.refund_due = False
                self._end(saga)
                return
            saga.order.payment_id = response.payment.id
        try:
            await self._call("payment", "Refund", refund_request(saga), deadline)
        except grpc.aio.AioRpcError as error:
            # Only these say for certain that nothing is left to give back.
            if error_reason(error) not in ("REFUND_EXCEEDS_CAPTURE", "PAYMENT_NOT_CAPTURED"):
                raise Interrupted(_describe("payment", "Refund", error)) from error
            log.warning("%s: nothing left to refund", _describe("payment", "Refund", error))
        saga.refund_due = False
        self._end(saga)

    def _give_up_on_charge(self, saga: Saga) -> bool:
        """Ends an order whose charge stayed unknown too long: FAILED rather than PENDING
        forever, with a durable reconciliation record (written with the final state)
        that the reconciler keeps resolving until the money is accounted for."""
        age = time.time() - saga.order.create_time.ToNanoseconds() / 1e9
        if age < self.settings.unknown_charge_seconds:
            return False
        charge = action_request_id(saga.id, "charge")
        log.error(
            "order %s: outcome of charge %s still unknown after %.0f s; reconcile it",
            saga.id,
            charge,
            age,
            extra={"order_id": saga.id, "charge_request_id": charge},
        )
        saga.failure_message += (
            "; whether the payment was taken could not be learned yet: it is being"
            " reconciled, and refunded if it was"
        )
        saga.refund_due = False
        saga.reconcile_charge = True
        self._end(saga)
        return True

    @staticmethod
    def _end(saga: Saga) -> None:
        """Compensation is done: a cancelled confirmed order, or a failed checkout."""
        if saga.order.status == order_pb2.ORDER_STATUS_CONFIRMED:
            saga.finish(order_pb2.ORDER_STATUS_CANCELLED)
        else:
            saga.finish(order_pb2.ORDER_STATUS_FAILED)
