"""The server interceptor chain, built in one place so every server uses the same one.

Order matters (the first is outermost): tracing opens the span and continues an
incoming W3C traceparent, so everything inside logs and reports with that trace
id; metrics then sees the final status code of every call, including the ones
the error mapping produced; the inbound deadline is recorded for the handler's
own downstream calls (mesh.deadline); the error mapping is next, so it maps what
the innermost raises: the request's decoding, which refuses a request that is
not a valid message of its type (decoding.py) before the handler runs.
"""

from __future__ import annotations

import time

import grpc
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

from mesh.deadline import serving_until
from services.runtime.decoding import RequestDecoding
from services.runtime.errors import ErrorInterceptor
from services.runtime.metrics import MetricsInterceptor
from services.runtime.unary import Behavior, UnaryWrappingInterceptor

__all__ = ["InboundDeadline", "server_interceptors", "tracing_interceptor"]


# Health probes and reflection are not traced: they are noise in traces, and the
# OpenTelemetry aio interceptor cannot wrap their write()-style streaming handlers.
_UNTRACED = filters.negate(
    filters.any_of(
        filters.service_prefix("grpc.health."), filters.service_prefix("grpc.reflection.")
    )
)


def tracing_interceptor(tracer_provider=None) -> grpc.aio.ServerInterceptor:
    """OpenTelemetry's aio server interceptor; the global tracer provider unless one is given."""
    return aio_server_interceptor(tracer_provider=tracer_provider, filter_=_UNTRACED)


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


def server_interceptors(tracer_provider=None) -> list[grpc.aio.ServerInterceptor]:
    return [
        tracing_interceptor(tracer_provider),
        MetricsInterceptor(),
        InboundDeadline(),
        ErrorInterceptor(),
        RequestDecoding(),
    ]
