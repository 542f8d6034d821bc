"""Each cluster's calls as the proxies that call it counted them (their admin APIs).

Used by `shopmesh rollout` to judge each version of a service by its callers, and by
`shopmesh bench` for the latency the edge measured of what it admitted.

A service's versions are clusters of their own in every proxy that calls it
(shopmesh/envoy/routing.py), so the edge and each calling sidecar count each
version's calls apart, as Flagger reads istio_requests_total by destination
version:

- calls and errors: the per-host counters `rq_total` and `rq_error` of the
  version's cluster (the admin API's /clusters). Envoy counts a gRPC call as an
  error by its grpc-status as it maps it to HTTP, so a server fault (5xx: the
  statuses of shopmesh.rollout.FAILED_CALL_CODES, which istio/'s Flagger check
  counts too) is one, an answer such as NOT_FOUND or INVALID_ARGUMENT is not;
  the cluster's own `upstream_rq_5xx` counts a gRPC call by its HTTP status
  only, which is 200 for all of these;
- latency: the cluster's `upstream_rq_time` histogram (/stats/prometheus), whose
  99th percentile is read from its buckets as Prometheus' histogram_quantile does.

A window's figures are the difference between two readings, summed over the
callers. A proxy restarted meanwhile counts from zero again, so its later reading
counts whole: a reading is the proxy's as one process (its name and its admin
address, which a restarted Envoy binds anew), and one whose counters went
backwards (a host re-added, an admin port bound again) counts whole too.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from shopmesh.local.admin import EnvoyAdmin

__all__ = ["Counts", "Figures", "Meter", "Window", "quantile"]

LATENCY_HISTOGRAM = "envoy_cluster_upstream_rq_time"
# Envoy merges its histograms when its admin API is asked for stats, after answering:
# a reading asks, waits this long, and asks again for the merged buckets.
HISTOGRAM_MERGE_SECONDS = 0.05


@dataclass(frozen=True)
class Counts:
    """Cumulative counters of one version's cluster at one proxy."""

    requests: int = 0
    errors: int = 0
    # (upper bound in ms, calls at or under it), increasing, the last one +Inf
    buckets: tuple[tuple[float, int], ...] = ()

    def since(self, earlier: Counts) -> Counts:
        """What happened between `earlier` and this reading of the same proxy."""
        if (
            self.requests < earlier.requests
            or self.errors < earlier.errors
            or any(
                now < then
                for (_, now), (_, then) in zip(self.buckets, earlier.buckets, strict=False)
            )
        ):
            return self  # restarted meanwhile: every count is new
        before = dict(earlier.buckets)
        return Counts(
            self.requests - earlier.requests,
            self.errors - earlier.errors,
            tuple((bound, n - before.get(bound, 0)) for bound, n in self.buckets),
        )


@dataclass(frozen=True)
class Figures:
    """One version's calls over a window, as every caller together saw them."""

    requests: int = 0
    errors: int = 0
    p99_ms: float | None = None  # None: no call completed

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @classmethod
    def of(cls, counts: Iterable[Counts]) -> Figures:
        counts = list(counts)
        merged: dict[float, int] = {}
        for c in counts:
            for bound, n in c.buckets:
                merged[bound] = merged.get(bound, 0) + n
        return cls(
            requests=sum(c.requests for c in counts),
            errors=sum(c.errors for c in counts),
            p99_ms=quantile(0.99, sorted(merged.items())),
        )


def quantile(q: float, buckets: list[tuple[float, int]]) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated linearly inside its bucket
    (Prometheus' histogram_quantile); in the +Inf bucket, the highest finite bound."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


# A proxy to read: its name (a restarted proxy keeps it) and its admin API now.
Caller = tuple[str, EnvoyAdmin]


class Meter:
    """Reads the clusters `clusters` (a service's versions) at the proxies `callers()` names."""

    def __init__(self, callers: Callable[[], list[Caller]], clusters: Iterable[str]) -> None:
        self._callers = callers
        self.clusters = tuple(clusters)
        names = "|".join(re.escape(c) for c in self.clusters)
        self._latency_filter = rf"^cluster\.({names})\.upstream_rq_time$"

    def read(self) -> dict[str, dict[str, Counts]]:
        """cluster -> proxy (name and admin address) -> its counts now; a proxy that
        does not answer is left out."""
        readings: dict[str, dict[str, Counts]] = {c: {} for c in self.clusters}
        callers = self._callers()
        for _name, admin in callers:  # each merges its histograms, then all are read
            with contextlib.suppress(OSError):
                admin.prometheus(self._latency_filter)
        time.sleep(HISTOGRAM_MERGE_SECONDS)
        for name, admin in callers:
            try:
                latency = _buckets(admin.prometheus(self._latency_filter))
                calls = _host_counters(admin.get_json("/clusters?format=json"), self.clusters)
            except OSError:
                continue  # restarting: its next reading tells what it saw
            for cluster in self.clusters:
                # Not by name alone: a restarted proxy's counts are not its old process's.
                readings[cluster][f"{name} {admin.address}"] = Counts(
                    *calls.get(cluster, (0, 0)), latency.get(cluster, ())
                )
        return readings


def _host_counters(document: Mapping, clusters: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """cluster -> (calls, errors) summed over its hosts."""
    found = {}
    for cluster in document.get("cluster_statuses", []):
        if cluster["name"] not in clusters:
            continue
        requests = errors = 0
        for host in cluster.get("host_statuses", []):
            stats = {s["name"]: int(s.get("value", 0)) for s in host.get("stats", [])}
            requests += stats.get("rq_total", 0)
            errors += stats.get("rq_error", 0)
        found[cluster["name"]] = (requests, errors)
    return found


def _buckets(text: str) -> dict[str, tuple[tuple[float, int], ...]]:
    """cluster -> the cumulative buckets of its upstream_rq_time histogram."""
    found: dict[str, list[tuple[float, int]]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != LATENCY_HISTOGRAM:
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                cluster = sample.labels["envoy_cluster_name"]
                found.setdefault(cluster, []).append(
                    (float(sample.labels["le"]), int(sample.value))
                )
    return {cluster: tuple(sorted(buckets)) for cluster, buckets in found.items()}


class Window:
    """The figures of each cluster since the window was opened."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self._start = meter.read()

    def figures(self) -> dict[str, Figures]:
        now = self.meter.read()
        return {
            cluster: Figures.of(
                counts.since(self._start[cluster].get(proxy, Counts()))
                for proxy, counts in now[cluster].items()
            )
            for cluster in self.meter.clusters
        }
