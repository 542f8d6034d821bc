"""Client tracing: a span per call and W3C trace context in its metadata.

The server side (services.runtime.interceptors) continues the trace from the
`traceparent` header, so one checkout is one trace across order, catalog,
inventory and payment. Where spans go (exporter, sampling) and which headers
carry the context (OTEL_PROPAGATORS; W3C tracecontext and baggage by default)
is the process's choice via the global provider and propagator.

asyncio channels trace unary calls through the OpenTelemetry API directly
(`ClientSpans`, used by mesh.interceptors._aio_chain): OpenTelemetry's gRPC
instrumentation runs as a grpc.aio interceptor, which alone added about
0.25 ms to a 0.8 ms loopback call even when the span was not sampled (an
interceptor that awaits its call costs a task hand-off, the instrumentation
builds its attributes, metadata and call details on every call). `ClientSpans`
makes the same spans (name, kind, attributes, error status and exception
event) and sends the same headers; an unsampled call costs a non-recording
span and the header. Streaming calls, which no contract in proto/ uses, and
the blocking API keep the instrumentation's interceptors.

One thing differs, and only where nothing is recorded: a call made while the
current span is not sampled (a service's call for a request that was not
sampled, 99 in 100 by default) gets no span of its own. Whatever the sampler,
OpenTelemetry's standard ones never sample such a child (parent-based ones
follow the parent; trace-id ratio decides by the same trace id; always-off
never samples; always-on samples every parent), so the span would record
nothing; the `traceparent` then names the request's span, with the same trace
id and the not-sampled flag, and the server continues the same trace. A call
with no current span (a root: background work, a command-line tool) or a
sampled one gets a span as before, the sampler deciding.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

import grpc
from opentelemetry import baggage, propagate, trace
from opentelemetry.instrumentation.grpc import (
    aio_client_interceptors,
    client_interceptor,
    grpcext,
)
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.propagators.textmap import Setter
from opentelemetry.semconv._incubating.attributes.rpc_attributes import (
    RPC_GRPC_STATUS_CODE,
    RPC_METHOD,
    RPC_SERVICE,
    RPC_SYSTEM,
)
from opentelemetry.trace import TracerProvider
from opentelemetry.trace.status import Status, StatusCode

__all__ = ["SCOPE", "ClientSpans", "aio_stream_tracing", "client_tracing", "method_attributes"]

# The instrumentation scope of the instrumentation package, whose spans these replace:
# a backend's views of gRPC client spans keep working.
SCOPE = "opentelemetry.instrumentation.grpc"
OK_CODE = grpc.StatusCode.OK.value[0]


def client_tracing(channel: grpc.Channel, provider: TracerProvider | None = None) -> grpc.Channel:
    """Wrap a sync channel in the instrumentation's tracing interceptor."""
    return grpcext.intercept_channel(channel, client_interceptor(tracer_provider=provider))


def aio_stream_tracing(provider: TracerProvider | None = None) -> list[Any]:
    """The instrumentation's interceptors for an asyncio channel's streaming calls only:
    grpc.aio applies an interceptor to the call types it implements, so unary calls
    stay uninterceptored (ClientSpans traces them)."""
    return [
        interceptor
        for interceptor in aio_client_interceptors(tracer_provider=provider)
        if not isinstance(interceptor, grpc.aio.UnaryUnaryClientInterceptor)
    ]


class _LowercaseSetter(Setter):
    # gRPC refuses metadata keys with capitals; some propagators write them (B3's X-B3-*).
    def set(self, carrier: MutableMapping[str, str], key: str, value: str) -> None:
        carrier[key.lower()] = value


_setter = _LowercaseSetter()


# What OpenTelemetry propagates by default (OTEL_PROPAGATORS unset): W3C trace context
# and baggage.
W3C_FIELDS = frozenset({"traceparent", "tracestate", "baggage"})
_w3c_textmap: list[Any] = [None, False]  # the global propagator last seen, and whether W3C's


def _propagates_w3c() -> bool:
    textmap = propagate.get_global_textmap()
    if _w3c_textmap[0] is not textmap:
        _w3c_textmap[:] = [textmap, textmap.fields == W3C_FIELDS]
    return _w3c_textmap[1]


def _trace_headers(span: trace.Span, context: trace.SpanContext) -> Iterable[tuple[str, str]]:
    """The headers that carry the call's trace context to the server.

    With the default propagators and nothing but a traceparent to send (no
    tracestate, no baggage: the usual case) the header is written here, as
    OpenTelemetry's TraceContextTextMapPropagator writes it; the propagators' own
    path cost a quarter of an unsampled call's tracing. Anything else goes through
    the process's propagators.
    """
    if _propagates_w3c() and not context.trace_state and not baggage.get_all():
        if not context.is_valid:
            return ()
        return (("traceparent", f"00-{context.trace_id:032x}-{context.span_id:016x}-"
                                f"{context.trace_flags:02x}"),)  # fmt: skip
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span), setter=_setter)
    return carrier.items()


def _with(metadata: Iterable[tuple[str, Any]] | None, headers: Iterable[tuple[str, str]]) -> Any:
    if not headers:
        return metadata
    return grpc.aio.Metadata(*(metadata or ()), *headers)


def method_attributes(method: str) -> dict[str, Any]:
    """The span attributes the instrumentation gives every call of `method` (a path,
    "/package.Service/Method"), client or server side: made once per method."""
    service, name = method.lstrip("/").split("/", 1)
    return {RPC_SYSTEM: "grpc", RPC_GRPC_STATUS_CODE: OK_CODE, RPC_METHOD: name,
            RPC_SERVICE: service}  # fmt: skip


class ClientSpans:
    """Client spans for the unary calls of one channel, as the instrumentation makes them:
    named by the method path, kind CLIENT, with rpc.system, rpc.service, rpc.method and
    rpc.grpc.status_code."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        # A ProxyTracer when no provider is set yet: it follows the global one once set.
        self._tracer = trace.get_tracer(SCOPE, tracer_provider=provider)

    def start(
        self, method: str, attributes: dict[str, Any], metadata: Iterable[tuple[str, Any]] | None
    ) -> tuple[trace.Span, grpc.aio.Metadata | None]:
        """A span for one call (a child of the current span) and the call's metadata
        with the trace context added (as grpc.aio.Metadata: grpc.aio converts a tuple
        into one, which cost a sixth of what tracing adds to a call)."""
        if not is_instrumentation_enabled():
            return trace.INVALID_SPAN, metadata
        parent = trace.get_current_span()
        parent_context = parent.get_span_context()
        if parent_context.is_valid and not parent_context.trace_flags.sampled:
            # A call made for a request that is not sampled: no span would be recorded,
            # so none is made; the trace goes on under the request's own span.
            return trace.INVALID_SPAN, _with(metadata, _trace_headers(parent, parent_context))
        # The attributes are set once the span is known to record: building them into a
        # span that is dropped cost a third of an unsampled call's tracing. (No sampler of
        # the SDK decides by attributes.)
        span = self._tracer.start_span(method, kind=trace.SpanKind.CLIENT)
        if span.is_recording():
            span.set_attributes(attributes)
        return span, _with(metadata, _trace_headers(span, span.get_span_context()))

    @staticmethod
    def end(span: trace.Span, error: BaseException | None = None) -> None:
        """Ends a call's span; a failed call's span says how, as the instrumentation's does."""
        if span is trace.INVALID_SPAN:
            return
        if error is not None and span.is_recording():
            if isinstance(error, grpc.RpcError):
                span.set_attribute(RPC_GRPC_STATUS_CODE, error.code().value[0])
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            span.record_exception(error)
        span.end()
