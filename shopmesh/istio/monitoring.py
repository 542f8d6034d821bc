"""What Prometheus scrapes in the namespace: every pod of the services, through its sidecar.

One PodMonitor (Prometheus Operator) for the four services' pods, whichever
Deployment runs them (Flagger's primary and the release alike). Under STRICT mTLS
a Prometheus without a sidecar cannot reach the app's own /metrics port (9464),
so it scrapes what Istio's agent serves in plain HTTP on port 15020,
/stats/prometheus: the sidecar's request metrics (istio_requests_total,
istio_request_duration_milliseconds, which Flagger's checks query) merged with
the app's (grpc_server_handled_total, grpc_server_handling_seconds, shopmesh_*;
the pods' prometheus.io/* annotations tell the agent where they are). A
ServiceMonitor would need a Service with a metrics port, and the Services of
these pods are Flagger's under progressive delivery; the metrics are per pod anyway.
"""

from __future__ import annotations

from typing import Any

from shopmesh import topology
from shopmesh.istio.cluster import PART_OF, SERVICE_LABEL, metadata

__all__ = ["MERGED_METRICS_PORT", "SCRAPE_INTERVAL_SECONDS", "SIDECAR_PORT_NAME", "pod_monitor"]

# How often each pod is scraped. A query's range (Flagger's analysis window) must
# hold two scrapes for rate() to see anything.
SCRAPE_INTERVAL_SECONDS = 15

# The port the injected istio-proxy container declares (Envoy's own stats, 15090):
# the one target per pod a PodMonitor needs. Its neighbour 15020 is what is scraped.
SIDECAR_PORT_NAME = "http-envoy-prom"
# Istio's agent: Envoy's and the app's metrics merged (outside the mTLS interception).
MERGED_METRICS_PORT = 15020


def pod_monitor() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": metadata("shop", labels=dict(PART_OF)),
        "spec": {
            "selector": {
                "matchExpressions": [
                    {
                        "key": SERVICE_LABEL,
                        "operator": "In",
                        "values": sorted(topology.load().services),
                    }
                ]
            },
            # On every series: the Deployment (`app`: catalog or catalog-primary),
            # so each version's figures compare side by side, and the service.
            "podTargetLabels": ["app", SERVICE_LABEL],
            "podMetricsEndpoints": [
                {
                    "port": SIDECAR_PORT_NAME,
                    "path": "/stats/prometheus",
                    "interval": f"{SCRAPE_INTERVAL_SECONDS}s",
                    "relabelings": [
                        {
                            # podIP:15090 ([podIP]:15090 for IPv6) -> the agent's port.
                            "action": "replace",
                            "sourceLabels": ["__address__"],
                            "regex": r"(.+):\d+",
                            "replacement": f"$1:{MERGED_METRICS_PORT}",
                            "targetLabel": "__address__",
                        }
                    ],
                }
            ],
        },
    }
