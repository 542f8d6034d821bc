"""Tracing for a service process: the OpenTelemetry SDK, set up once by serve().

Without an SDK provider every span is a no-op: a request arriving without a
`traceparent` would start no trace, its log lines would carry no trace id, and
nothing would be exported. Configuration is OpenTelemetry's own environment:

- `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`: by default here
  `parentbased_traceidratio` at 1 %: a caller's decision is kept, and 1 in 100
  new traces is recorded (every call still gets a trace id for its logs);
- `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`): where
  recorded spans go, batched, over OTLP/gRPC. Unset: nothing is exported;
- `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`: the service name defaults to
  the shopmesh service's.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

__all__ = ["DEFAULT_SAMPLE_RATIO", "configure_tracing"]

DEFAULT_SAMPLE_RATIO = 0.01
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def configure_tracing(service: str) -> TracerProvider:
    """Installs the process's tracer provider; call provider.shutdown() to flush at exit."""
    # Explicit sampler only when the environment names none: the SDK reads it otherwise.
    sampler = (
        None
        if "OTEL_TRACES_SAMPLER" in os.environ
        else ParentBased(TraceIdRatioBased(DEFAULT_SAMPLE_RATIO))
    )
    attributes = {} if "OTEL_SERVICE_NAME" in os.environ else {SERVICE_NAME: service}
    provider = TracerProvider(sampler=sampler, resource=Resource.create(attributes))
    if any(os.environ.get(name) for name in _ENDPOINTS):
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider
