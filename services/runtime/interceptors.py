"""The server interceptor chain, built in one place so every server uses the same one.

Order matters (the first is outermost): tracing opens the span and continues an
incoming W3C traceparent, so everything inside logs and reports with that trace
id; metrics then sees the final status code of every call, including the ones
the error mapping produced; the inbound deadline is recorded for the handler's
own downstream calls (mesh.deadline); the error mapping is next, so it maps what
the innermost raises: the request's decoding, which refuses a request that is
not a valid message of its type (decoding.py) before the handler runs.

The parts are fused into one grpc.aio interceptor (`ServerChain`): grpc.aio asks
every interceptor for the method's handler on every call, each through a
coroutine of its own, so five interceptors cost five lookups per call where one
wrapper per method, built on its first call, does the same work.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import grpc

from mesh.deadline import serving_until
from services.runtime.decoding import RequestDecoding
from services.runtime.errors import ErrorInterceptor
from services.runtime.metrics import MetricsInterceptor
from services.runtime.server_tracing import ServerTracing
from services.runtime.unary import Behavior, UnaryWrappingInterceptor

__all__ = ["InboundDeadline", "ServerChain", "server_interceptors", "tracing_interceptor"]


def tracing_interceptor(tracer_provider=None) -> UnaryWrappingInterceptor:
    """Server spans continuing the caller's trace; the global tracer provider unless one
    is given."""
    return ServerTracing(tracer_provider)


class InboundDeadline(UnaryWrappingInterceptor):
    """Records the incoming call's deadline for the handler's downstream calls."""

    def wrap(self, behavior: Behavior, method: str) -> Behavior:
        async def with_deadline(request, context: grpc.aio.ServicerContext):
            left = context.time_remaining()
            # gRPC reports "no deadline" as a very large number of seconds.
            deadline = time.monotonic() + left if left is not None and left < 1e8 else None
            with serving_until(deadline):
                return await behavior(request, context)

        return with_deadline


class ServerChain(UnaryWrappingInterceptor):
    """Unary-wrapping interceptors as one: each method's handler is wrapped by every part
    once (the first part outermost), and each call runs the wrappers with no lookup."""

    def __init__(self, parts: Sequence[UnaryWrappingInterceptor]) -> None:
        super().__init__()
        self._parts = tuple(parts)

    def wrap(self, behavior: Behavior, method: str) -> Behavior:
        for part in reversed(self._parts):
            behavior = part.wrap(behavior, method)
        return behavior

    def request_deserializer(self, deserializer):
        for part in reversed(self._parts):
            deserializer = part.request_deserializer(deserializer)
        return deserializer


def server_interceptors(tracer_provider=None) -> list[grpc.aio.ServerInterceptor]:
    return [
        ServerChain(
            [
                tracing_interceptor(tracer_provider),
                MetricsInterceptor(),
                InboundDeadline(),
                ErrorInterceptor(),
                RequestDecoding(),
            ]
        )
    ]
