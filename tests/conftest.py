import pathlib

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

ROOT = pathlib.Path(__file__).resolve().parent.parent

# One tracer provider per process (OpenTelemetry allows setting it once), exporting to
# memory so tests can inspect spans of in-process servers and clients.
_SPANS = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_SPANS))
trace.set_tracer_provider(_provider)


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return ROOT


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """Finished spans of this test (in-process only)."""
    _SPANS.clear()
    return _SPANS
