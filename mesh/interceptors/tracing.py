"""Client tracing: OpenTelemetry's gRPC instrumentation.

The client interceptor starts a span per call and injects the W3C `traceparent`
header; the server side (services.runtime.interceptors) continues the trace from it,
so one checkout is one trace across order, catalog, inventory and payment. Where
spans go (exporter, sampling) is the process's choice via the global provider.
"""

from __future__ import annotations

from typing import Any

import grpc
from opentelemetry.instrumentation.grpc import (
    aio_client_interceptors,
    client_interceptor,
    grpcext,
)
from opentelemetry.trace import TracerProvider

__all__ = ["aio_client_tracing", "client_tracing"]


def client_tracing(channel: grpc.Channel, provider: TracerProvider | None = None) -> grpc.Channel:
    """Wrap a sync channel in the tracing interceptor (it has its own interception API)."""
    return grpcext.intercept_channel(channel, client_interceptor(tracer_provider=provider))


def aio_client_tracing(provider: TracerProvider | None = None) -> list[Any]:
    return list(aio_client_interceptors(tracer_provider=provider))
