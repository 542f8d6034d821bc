"""The server interceptor chain, built in one place so every server uses the same one.

Order matters (the first is outermost): tracing opens the span and continues an
incoming W3C traceparent, so everything inside logs and reports with that trace
id; metrics then sees the final status code of every call, including the ones
the error mapping produced; the inbound deadline is recorded for the handler's
own downstream calls (mesh.deadline); the error mapping is innermost, next to the
handler.
"""

from __future__ import annotations

import grpc
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

from mesh.deadline import InboundDeadline
from mesh.server.errors import ErrorInterceptor
from mesh.server.metrics import MetricsInterceptor

__all__ = ["server_interceptors", "tracing_interceptor"]


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


def server_interceptors(tracer_provider=None) -> list[grpc.aio.ServerInterceptor]:
    return [
        tracing_interceptor(tracer_provider),
        MetricsInterceptor(),
        InboundDeadline(),
        ErrorInterceptor(),
    ]
