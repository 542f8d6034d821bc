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
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

__all__ = ["DEFAULT_SAMPLE_RATIO", "configure_tracing"]

DEFAULT_SAMPLE_RATIO = 0.01
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def configure_tracing(service: str) -> TracerProvider:
    """Installs the process's tracer provider; call provider.shutdown() to flush at exit."""
    provider = TracerProvider(sampler=_sampler(), resource=Resource.create(_attributes(service)))
    if any(os.environ.get(name) for name in _ENDPOINTS):
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def _sampler() -> Sampler | None:
    if "OTEL_TRACES_SAMPLER" in os.environ:
        return None  # the SDK reads the sampler and its argument itself
    ratio = os.environ.get("OTEL_TRACES_SAMPLER_ARG", "")
    try:
        return ParentBased(TraceIdRatioBased(float(ratio) if ratio else DEFAULT_SAMPLE_RATIO))
    except ValueError:
        raise ValueError(
            f"OTEL_TRACES_SAMPLER_ARG must be a ratio between 0 and 1, not {ratio!r}"
        ) from None


def _attributes(service: str) -> dict[str, str]:
    """The service name, unless the environment names the service itself."""
    given = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    named = "OTEL_SERVICE_NAME" in os.environ or any(
        pair.strip().startswith(f"{SERVICE_NAME}=") for pair in given.split(",")
    )
    return {} if named else {SERVICE_NAME: service}
