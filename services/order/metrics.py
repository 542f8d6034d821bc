"""Prometheus metrics of the checkout saga (served on the runtime's /metrics endpoint)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = ["ORDERS_FINISHED", "RECONCILIATIONS_OPEN", "RECONCILIATIONS_RESOLVED", "SAGAS_RESUMED"]

ORDERS_FINISHED = Counter(
    "shopmesh_orders_finished_total",
    "Orders that reached a final status, by status and failure reason.",
    ["status", "reason"],
)
SAGAS_RESUMED = Counter(
    "shopmesh_order_sagas_resumed_total",
    "Sagas this process took over from a run that stopped (crash, deadline, outage).",
)
RECONCILIATIONS_OPEN = Gauge(
    "shopmesh_order_reconciliations_open",
    "Charges whose outcome is still being reconciled (as of this process's last pass).",
)
RECONCILIATIONS_RESOLVED = Counter(
    "shopmesh_order_reconciliations_resolved_total",
    "Reconciliations this process closed, by how: refunded or nothing_owed.",
    ["outcome"],
)
