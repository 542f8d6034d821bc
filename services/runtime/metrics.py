"""Prometheus metrics for gRPC servers: an interceptor and the /metrics HTTP endpoint.

Metric names follow go-grpc-prometheus, so existing dashboards work:
`grpc_server_handled_total{grpc_service,grpc_method,grpc_code}`,
`grpc_server_handling_seconds{grpc_service,grpc_method}` (histogram) and
`grpc_server_in_flight{grpc_service,grpc_method}`.

The label children of a method are looked up once and cached: resolving labels
is the costly part of prometheus-client, and it would otherwise run per call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import grpc
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

from services.runtime.unary import Behavior, UnaryWrappingInterceptor, status_code

__all__ = ["MetricsInterceptor", "MetricsServer", "start_metrics_server"]

_LABELS = ("grpc_service", "grpc_method")
HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by method and status code.",
    [*_LABELS, "grpc_code"],
)
HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time the server took to handle an RPC, by method.",
    _LABELS,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IN_FLIGHT = Gauge("grpc_server_in_flight", "RPCs being handled now, by method.", _LABELS)


class _MethodMetrics:
    """Label children of one method, resolved once."""

    def __init__(self, method_path: str) -> None:
        service, _, method = method_path.lstrip("/").partition("/")
        self.labels = (service, method)
        self.latency = HANDLING_SECONDS.labels(*self.labels)
        self.in_flight = IN_FLIGHT.labels(*self.labels)
        self._handled: dict[grpc.StatusCode, Counter] = {}

    def handled(self, code: grpc.StatusCode) -> Counter:
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = HANDLED.labels(*self.labels, code.name)
        return child


class MetricsInterceptor(UnaryWrappingInterceptor):
    """Counts and times every unary RPC (streams, e.g. health Watch, are left alone)."""

    def wrap(self, behavior: Behavior, method: str) -> Behavior:
        metrics = _MethodMetrics(method)

        async def measured(request, context):
            metrics.in_flight.inc()
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                return await behavior(request, context)
            except BaseException as error:
                code = status_code(context, error)
                raise
            finally:
                metrics.latency.observe(time.perf_counter() - start)
                metrics.handled(code).inc()
                metrics.in_flight.dec()

        return measured


@dataclass
class MetricsServer:
    """The /metrics HTTP endpoint of one process."""

    httpd: object
    port: int

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def start_metrics_server(listen: str) -> MetricsServer:
    """Serve the default registry on `host:port` (port 0 picks a free one) in a thread."""
    host, _, port = listen.rpartition(":")
    httpd, _thread = start_http_server(int(port), addr=host or "0.0.0.0", registry=REGISTRY)
    return MetricsServer(httpd, httpd.server_port)
