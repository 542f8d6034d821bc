"""Server tracing: a span per unary call, continuing the caller's W3C trace context.

The spans are the ones OpenTelemetry's gRPC instrumentation makes (its aio server
interceptor, whose scope name they keep): named by the method path, kind SERVER,
with rpc.system, rpc.service, rpc.method, rpc.grpc.status_code, the peer's
address and the user agent, status ERROR for the codes the instrumentation
counts as server errors, and the exception of a handler that failed without a
status. They are made here, through the OpenTelemetry API, because the
instrumentation's interceptor did per call what can be done once per method:
it evaluated its method filter on every call (a tenth of the inventory
service's Python time under checkout load, measured with py-spy), built its
attribute dict and wrapped the servicer context in a proxy even for a call
whose span records nothing (99 in 100 by default). Here the filter is decided
when a method's handler is first wrapped, attributes are set only on a span
that records, and the status code is read from the context once the call ends.

The sampler still decides every span (a caller's unsampled trace context makes
a non-recording span under the same trace id), so log lines and downstream
calls carry the trace whatever the sampling.
"""

from __future__ import annotations

import asyncio
from urllib.parse import unquote

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.semconv._incubating.attributes.net_attributes import (
    NET_PEER_IP,
    NET_PEER_NAME,
    NET_PEER_PORT,
)
from opentelemetry.semconv._incubating.attributes.rpc_attributes import RPC_GRPC_STATUS_CODE
from opentelemetry.trace import TracerProvider
from opentelemetry.trace.status import Status, StatusCode

from mesh.interceptors.tracing import SCOPE, method_attributes
from mesh.status import SERVER_FAULTS
from services.runtime.unary import Behavior, UnaryWrappingInterceptor, status_code

__all__ = ["UNTRACED_PREFIXES", "ServerTracing"]

# Health probes and reflection are not traced: they are noise in traces.
UNTRACED_PREFIXES = ("/grpc.health.", "/grpc.reflection.")


def _peer_attributes(peer: str) -> dict[str, str]:
    """net.peer.* of "ipv4:127.0.0.1:57284" or "ipv6:[::1]:57284" (the first of a list)."""
    if peer.startswith("unix:"):
        return {}
    try:
        ip, port = peer.split(",")[0].split(":", 1)[1].rsplit(":", 1)
    except (IndexError, ValueError):
        return {}
    ip = unquote(ip)
    attributes = {NET_PEER_IP: ip, NET_PEER_PORT: port}
    if ip in ("[::1]", "127.0.0.1"):
        attributes[NET_PEER_NAME] = "localhost"
    return attributes


class ServerTracing(UnaryWrappingInterceptor):
    """A SERVER span around every unary call of a traced method (see module doc)."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        super().__init__()
        # A ProxyTracer when no provider is set yet: it follows the global one once set.
        self._tracer = trace.get_tracer(SCOPE, tracer_provider=provider)

    def wrap(self, behavior: Behavior, method: str) -> Behavior:
        if method.startswith(UNTRACED_PREFIXES):
            return behavior
        attributes = method_attributes(method)
        tracer = self._tracer

        async def traced(request, context: grpc.aio.ServicerContext):
            if not is_instrumentation_enabled():
                return await behavior(request, context)
            metadata = context.invocation_metadata()
            parent = propagate.extract({m.key: m.value for m in metadata}) if metadata else None
            # The method's attributes go to the sampler, as the instrumentation's do; the
            # peer's and the user agent's only to a span that records.
            span = tracer.start_span(
                method, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes
            )
            recording = span.is_recording()
            if recording:
                span.set_attributes(_peer_attributes(context.peer()))
                agent = next((m.value for m in metadata or () if m.key == "user-agent"), None)
                if agent is not None:
                    span.set_attribute("rpc.user_agent", agent)
            token = otel_context.attach(trace.set_span_in_context(span, parent))
            try:
                return await behavior(request, context)
            except BaseException as error:
                if recording:
                    _record_failure(span, context, error)
                raise
            finally:
                otel_context.detach(token)
                span.end()

        return traced


def _record_failure(span: trace.Span, context: grpc.aio.ServicerContext, error: BaseException):
    """The failed call's code on its span; ERROR status for a server error, and the
    exception itself unless it is the abort that carried the status or the cancellation
    of a call its caller gave up on."""
    code = status_code(context, error)
    span.set_attribute(RPC_GRPC_STATUS_CODE, code.value[0])
    if code in SERVER_FAULTS:  # as the instrumentation: the caller's errors stay UNSET
        span.set_status(Status(StatusCode.ERROR, f"{code}:{context.details() or ''}"))
    if not isinstance(error, (grpc.aio.AbortError, asyncio.CancelledError)):
        span.record_exception(error)
