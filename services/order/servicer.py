"""OrderService handlers: who is calling (access.py), validate, then hand over to Orders
(checkout and cancellation sagas) or read the store."""

from __future__ import annotations

import time

import grpc

from mesh import contracts
from services.order import access, validation
from services.order.orders import Orders
from services.runtime import ServerConfig
from services.runtime.paging import encode_page_token

__all__ = ["OrderServicer"]

contract = contracts.service("order")
messages = contract.messages

# gRPC reports "no deadline" as a huge number of seconds.
_NO_DEADLINE = 1e8
# Seconds kept back from a request's deadline to send the answer through the sidecars.
ANSWER_MARGIN = 0.25


def _deadline(context: grpc.aio.ServicerContext, method: str) -> float:
    """When the saga must stop working for this request (time.monotonic()): the caller's
    deadline, else the contract's default, less a margin to answer in. An order still in
    progress then goes back as ORDER_IN_PROGRESS with its id, before a proxy on the way
    times the call out and the caller learns nothing."""
    left = context.time_remaining()
    if left is None or left >= _NO_DEADLINE:
        left = contract.methods[method].timeout
    return time.monotonic() + left - min(ANSWER_MARGIN, left / 10)


class OrderServicer(contract.servicer_base):
    def __init__(self, config: ServerConfig, orders: Orders) -> None:
        self._orders = orders

    async def PlaceOrder(self, request, context):
        user = access.caller(context)
        # The order is the caller's: what is stored, deduplicated and fingerprinted.
        request.customer_id = access.customer_for(user, request.customer_id, reading=False)
        validation.check_place(request)
        order = await self._orders.place(request, _deadline(context, "PlaceOrder"))
        return messages.PlaceOrderResponse(order=order)

    async def GetOrder(self, request, context):
        user = access.caller(context)
        validation.check_get(request)
        order = await self._orders.get(request.id)
        access.check_read(user, order)
        return messages.GetOrderResponse(order=order)

    async def ListOrders(self, request, context):
        user = access.caller(context)
        # Page tokens are bound to the customer actually listed.
        request.customer_id = access.customer_for(user, request.customer_id, reading=True)
        size, after = validation.check_list(request)
        # One more than asked tells whether another page follows.
        orders = await self._orders.store.list_orders(request.customer_id, after, size + 1)
        page, more = orders[:size], len(orders) > size
        next_token = ""
        if more:
            last = page[-1]
            next_token = encode_page_token(
                validation.list_filter(request), [last.create_time.ToNanoseconds(), last.id]
            )
        return messages.ListOrdersResponse(orders=page, next_page_token=next_token)

    async def CancelOrder(self, request, context):
        user = access.caller(context)
        validation.check_cancel(request)
        # An order's customer never changes: checked once, before anything is started.
        access.check_change(user, await self._orders.get(request.id))
        order = await self._orders.cancel(
            request.id, request.reason, _deadline(context, "CancelOrder")
        )
        return messages.CancelOrderResponse(order=order)
