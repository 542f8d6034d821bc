"""One order process: its store, its upstreams, its identity as a saga owner, and the
request-side rules of checkout and cancellation.

A request drives its own saga when it can (it created it, or it finds one in
flight whose lease has expired); otherwise another runner has it and the
request waits for that runner to finish, up to the request's deadline.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid

from shop.order.v1 import order_pb2

from services.order.access import unknown_order
from services.order.model import Saga, fingerprint, new_saga
from services.order.saga import PRODUCT_NOT_FOUND, Interrupted, SagaRunner
from services.order.settings import OrderSettings
from services.order.store import LeaseLost, OrderStore, PostgresOrderStore
from services.order.upstreams import Upstreams
from services.runtime import ServerConfig
from services.runtime.errors import FailedPrecondition, NotFound, Unavailable

__all__ = ["Orders"]

# How often a request waiting for another runner's saga looks at it again.
POLL_SECONDS = 0.05


class OrderInProgress(Unavailable):
    """The order is not final yet; it is finished in the background, a retry returns it."""

    def __init__(self, order_id: str, why: str) -> None:
        super().__init__(
            f"order {order_id} is not finished yet ({why}); it completes in the background"
            " and repeating the request returns it",
            reason="ORDER_IN_PROGRESS",
            metadata={"order_id": order_id},
        )


class Orders:
    """What the servicer and the background jobs of one order process share."""

    def __init__(self, store: OrderStore, upstreams: Upstreams, settings: OrderSettings) -> None:
        self.store = store
        self.upstreams = upstreams
        self.settings = settings
        # Unique per process start, readable in a saga's history.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.runner = SagaRunner(store, upstreams, self.owner, settings)

    @classmethod
    async def open(cls, config: ServerConfig) -> Orders:
        settings = OrderSettings.from_env(config.env)
        store = await PostgresOrderStore.open(
            config.database_url, lease_seconds=settings.lease_seconds
        )
        return cls(store, Upstreams(config.env), settings)

    async def probe(self) -> None:
        await self.store.probe()

    async def close(self) -> None:
        await self.upstreams.close()
        await self.store.close()

    async def get(self, order_id: str) -> order_pb2.Order:
        saga = await self.store.get(order_id)
        if saga is None:
            raise unknown_order(order_id)
        return saga.order

    async def place(self, request: order_pb2.PlaceOrderRequest, deadline: float) -> order_pb2.Order:
        """Checks out a validated request, or returns the order its request_id already made.

        The cart is priced before anything is stored: pricing only reads the catalog,
        so a cart naming a product the catalog does not have is refused (NOT_FOUND)
        and leaves no order behind, like any other bad request.
        """
        saga = await self.store.find(request.request_id)
        if saga is None:
            saga = await self._priced(new_saga(request), deadline)
            saga, created = await self.store.create(saga, self.owner)
            if created:
                return await self._drive(saga, deadline)
        if saga.order.customer_id != request.customer_id:
            # Someone else's checkout: say no without naming their order.
            raise FailedPrecondition(
                "REQUEST_ID_REUSED",
                f"request_id {request.request_id} was used for a different checkout;"
                " use a new request_id for a new checkout",
                metadata={"request_id": request.request_id},
            )
        if saga.fingerprint != fingerprint(request):
            raise FailedPrecondition(
                "REQUEST_ID_REUSED",
                f"request_id {request.request_id} was used for a different checkout"
                f" (order {saga.id}); use a new request_id for a new checkout",
                metadata={"request_id": request.request_id, "order_id": saga.id},
            )
        return await self._settle(saga, deadline)

    async def _priced(self, saga: Saga, deadline: float) -> Saga:
        try:
            await self.runner.price(saga, deadline)
        except Interrupted as stopped:
            raise Unavailable(f"{stopped}; no order was recorded") from stopped
        if saga.failure_reason == PRODUCT_NOT_FOUND:
            raise NotFound(saga.failure_message, reason=PRODUCT_NOT_FOUND)
        # Otherwise priced (next step RESERVE), or FAILED for a reason worth recording
        # (the catalog unreachable, mixed currencies): a retry returns that order.
        return saga

    async def cancel(self, order_id: str, reason: str, deadline: float) -> order_pb2.Order:
        while True:
            saga = await self.store.get(order_id)
            if saga is None:
                raise unknown_order(order_id)
            status = saga.order.status
            if status == order_pb2.ORDER_STATUS_PENDING or (
                saga.step is None and status == order_pb2.ORDER_STATUS_FAILED
            ):
                name = order_pb2.OrderStatus.Name(status).removeprefix("ORDER_STATUS_")
                raise FailedPrecondition(
                    "ORDER_NOT_CONFIRMED",
                    f"order {order_id} is {name}; only a confirmed order can be cancelled",
                    metadata={"order_id": order_id, "status": name},
                )
            if saga.step is not None:  # a cancellation is under way
                return await self._settle(saga, deadline)
            if status == order_pb2.ORDER_STATUS_CANCELLED:
                return saga.order
            started = await self.store.begin_cancel(order_id, self.owner, reason)
            if started is not None:
                return await self._drive(started, deadline)
            # Another request started cancelling it meanwhile: look again.

    async def _drive(self, saga: Saga, deadline: float) -> order_pb2.Order:
        """Runs a saga this process has just claimed, within the request's deadline."""
        try:
            saga = await self.runner.run(saga, deadline)
        except LeaseLost:
            # Another run has it: our lease ran out and another process took it over,
            # or this process is already running it (e.g. recovery).
            current = await self.store.get(saga.id)
            return await self._settle(current or saga, deadline)
        except Interrupted as stopped:
            raise OrderInProgress(saga.id, str(stopped)) from stopped
        return saga.order

    async def _settle(self, saga: Saga, deadline: float) -> order_pb2.Order:
        """The order once no saga is in flight for it: driven here if nobody runs it."""
        while saga.step is not None:
            running_here = self.runner.is_running(saga.id)
            claimed = None if running_here else await self.store.claim(saga.id, self.owner)
            if claimed is not None:
                return await self._drive(claimed, deadline)
            if time.monotonic() + POLL_SECONDS >= deadline:
                raise OrderInProgress(saga.id, "another request is still processing it")
            await asyncio.sleep(POLL_SECONDS)
            saga = await self.store.get(saga.id) or saga
        return saga.order
