"""A service process exports its spans over OTLP, sampled as configured (services.runtime.tracing).

A real catalog process and a small OTLP/gRPC collector on loopback that keeps what it is sent.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from mesh import contracts
from services.runtime import tracing
from services.runtime.testing import spawn

catalog = contracts.service("catalog")
GET_PRODUCT = "/shop.catalog.v1.CatalogService/GetProduct"
REQUEST = catalog.messages.GetProductRequest(id="kitchen-espresso-cup")
SAMPLED = "4bf92f3577b34da6a3ce929d0e0e4736"
NOT_SAMPLED = "5bf92f3577b34da6a3ce929d0e0e4736"


def _traceparent(trace_id: str, flags: str) -> tuple[tuple[str, str]]:
    return (("traceparent", f"00-{trace_id}-00f067aa0ba902b7-{flags}"),)


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str]] = []  # (service.name, span name, trace id)
        self._lock = threading.Lock()

    def Export(self, request, context):
        with self._lock:
            for resource_spans in request.resource_spans:
                attributes = {
                    a.key: a.value.string_value for a in resource_spans.resource.attributes
                }
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        self.spans.append(
                            (attributes.get("service.name"), span.name, span.trace_id.hex())
                        )
        return trace_service_pb2.ExportTraceServiceResponse()

    def wait_for(self, trace_id: str, timeout: float = 10) -> list[tuple[str, str, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [s for s in self.spans if s[2] == trace_id]
            if found:
                return found
            time.sleep(0.05)
        return []


@pytest.fixture
def collector():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    kept = Collector()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(kept, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield kept, port
    finally:
        server.stop(grace=None)


def test_a_service_exports_the_spans_its_sampler_keeps(databases, tmp_path, collector):
    kept, port = collector
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms: export soon, not every 5 s
    }
    with spawn("catalog", databases, tmp_path, env) as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = catalog.stub(channel)
            # The default sampler follows the caller's decision (parent-based).
            stub.GetProduct(REQUEST, metadata=_traceparent(NOT_SAMPLED, "00"), timeout=5)
            stub.GetProduct(REQUEST, metadata=_traceparent(SAMPLED, "01"), timeout=5)
        assert kept.wait_for(SAMPLED) == [("catalog", GET_PRODUCT, SAMPLED)]
    # Both calls were served before the process flushed its spans on SIGTERM.
    assert kept.wait_for(NOT_SAMPLED, timeout=0.5) == []


@pytest.mark.parametrize(
    ("env", "sampler", "name"),
    [
        ({}, "ParentBased{root:TraceIdRatioBased{0.01}", "catalog"),
        ({"OTEL_TRACES_SAMPLER_ARG": "0.5"}, "ParentBased{root:TraceIdRatioBased{0.5}", "catalog"),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, "AlwaysOnSampler", "catalog"),
        (
            {"OTEL_SERVICE_NAME": "shop-catalog"},
            "ParentBased{root:TraceIdRatioBased",
            "shop-catalog",
        ),
        ({"OTEL_RESOURCE_ATTRIBUTES": "team=shop, service.name=cat"}, "ParentBased", "cat"),
    ],
)
def test_sampling_and_service_name_follow_the_standard_environment(monkeypatch, env, sampler, name):
    for variable in ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_SERVICE_NAME",
                     "OTEL_RESOURCE_ATTRIBUTES"):  # fmt: skip
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    provider = TracerProvider(
        sampler=tracing._sampler(), resource=Resource.create(tracing._attributes("catalog"))
    )
    assert provider.sampler.get_description().startswith(sampler)
    assert provider.resource.attributes["service.name"] == name


def test_a_sampling_ratio_that_is_not_a_number_is_refused_at_startup(monkeypatch):
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "often")
    with pytest.raises(ValueError, match="OTEL_TRACES_SAMPLER_ARG must be a ratio"):
        tracing._sampler()
