"""The shape every shopmesh server interceptor shares: wrap a unary handler once per method.

grpc.aio asks the interceptors for a handler on every call. Building a wrapper per
call would cost an allocation chain per RPC; servers hand out the same handler
object per method, so each interceptor builds its wrapper once and reuses it.
Streaming handlers (health Watch, reflection) are passed through untouched.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

__all__ = ["UnaryWrappingInterceptor"]

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


class UnaryWrappingInterceptor(grpc.aio.ServerInterceptor, abc.ABC):
    def __init__(self) -> None:
        # method -> (the handler we wrapped, the wrapper)
        self._wrapped: dict[str, tuple[object, grpc.RpcMethodHandler]] = {}

    @abc.abstractmethod
    def wrap(self, behavior: Behavior, method: str) -> Behavior:
        """The unary behavior to run instead of `behavior` for `method`."""

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.response_streaming:
            return handler
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = grpc.unary_unary_rpc_method_handler(
            self.wrap(handler.unary_unary, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = (handler, wrapped)
        return wrapped
