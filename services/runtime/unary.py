"""The shape every shopmesh server interceptor shares: wrap a unary handler once per method.

grpc.aio asks the interceptors for a handler on every call. Building a wrapper per
call would cost an allocation chain per RPC; servers hand out the same handler
object per method, so each interceptor builds its wrapper once and reuses it.
Streaming handlers (health Watch, reflection) are passed through untouched.

Why not the `grpc-interceptor` package (AsyncServerInterceptor, and its
AsyncExceptionToStatusInterceptor for the error mapping): it builds a new
handler and closure on every call. Measured side by side in one run (a grpc.aio
echo on loopback, three interleaved servers, 8 x 1000 sequential calls each,
three interceptor layers, load average 4): the layers written here added 15-25 us
to the p50 of a bare server, grpc-interceptor's added 33-49 us. Its exception
mapping would also need overriding to attach ErrorInfo / BadRequest details, so
it would replace none of errors.py's logic.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

__all__ = ["UnaryWrappingInterceptor", "status_code"]

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
_CODES_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


def status_code(context: grpc.aio.ServicerContext, error: BaseException) -> grpc.StatusCode:
    """The code a call that raised `error` ended with: the one its handler aborted with;
    a call cancelled under it (its caller went away, or its deadline passed) is
    CANCELLED or DEADLINE_EXCEEDED; anything else is UNKNOWN, as gRPC answers it.
    (grpc.aio reports the code as a StatusCode or as its integer value.)"""
    if isinstance(error, asyncio.CancelledError):
        left = context.time_remaining()
        expired = left is not None and left <= 0
        return grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
    code = context.code()
    if not isinstance(code, grpc.StatusCode):
        code = _CODES_BY_VALUE.get(code, grpc.StatusCode.UNKNOWN)
    return grpc.StatusCode.UNKNOWN if code == grpc.StatusCode.OK else code


class UnaryWrappingInterceptor(grpc.aio.ServerInterceptor, abc.ABC):
    def __init__(self) -> None:
        # method -> (the handler we wrapped, the wrapper)
        self._wrapped: dict[str, tuple[object, grpc.RpcMethodHandler]] = {}

    @abc.abstractmethod
    def wrap(self, behavior: Behavior, method: str) -> Behavior:
        """The unary behavior to run instead of `behavior` for `method`."""

    def request_deserializer(self, deserializer: Callable[[bytes], Any] | None):
        """What turns the request's bytes into what `wrap`'s behavior receives."""
        return deserializer

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
            request_deserializer=self.request_deserializer(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = (handler, wrapped)
        return wrapped
