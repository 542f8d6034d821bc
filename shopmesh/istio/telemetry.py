"""Observability of the namespace: trace sampling and Istio's Prometheus metrics."""

from __future__ import annotations

from typing import Any

from shopmesh.istio.cluster import metadata

__all__ = ["TRACING_PROVIDER", "TRACING_SAMPLE_PERCENT", "telemetry"]

# An extensionProvider of the mesh config (README: istioctl install), here an
# OpenTelemetry collector; the apps propagate W3C trace context on every hop.
TRACING_PROVIDER = "otel"
# Enough to see every kind of slow request without tracing every checkout.
TRACING_SAMPLE_PERCENT = 10.0


def telemetry() -> dict[str, Any]:
    return {
        "apiVersion": "telemetry.istio.io/v1",
        "kind": "Telemetry",
        "metadata": metadata("shop"),
        "spec": {
            "tracing": [
                {
                    "providers": [{"name": TRACING_PROVIDER}],
                    "randomSamplingPercentage": TRACING_SAMPLE_PERCENT,
                }
            ],
            # Istio's standard request metrics (with grpc_response_status) from
            # every sidecar, merged with the app's own /metrics on one scrape port.
            "metrics": [{"providers": [{"name": "prometheus"}]}],
        },
    }
