"""Catalog GetProduct straight to the app vs through two sidecars with mTLS, same run.

The local mesh runs one catalog replica and one order replica. "direct" calls
the catalog app on its plaintext port; "two sidecars" calls the order
replica's outbound port for catalog, so each call crosses the caller's Envoy,
mTLS, the catalog's Envoy (RBAC) and reaches the same app. Rounds alternate
between the two at the same fixed arrival rate, so machine noise hits both.
Each round also runs the same calls with ghz (bench/ghz.py), a load generator
of the field, and its rows are printed beside ours: the cross-check that the
sidecars' cost is not an artefact of our generator.
Each Envoy's CPU comes from /proc; what it burns during the direct rounds
(health checks only) is subtracted as its idle cost. The goals are judged at
1000 req/s; a lower rate is measured too, because on two cores shared by the
app, both Envoys and the load generator 1000 req/s is close to saturation and
the ratio there is mostly queueing.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field

from shopmesh.bench import fixed_rate, ghz
from shopmesh.bench.proc import CpuMeter
from shopmesh.bench.row import Row, errors_text
from shopmesh.load.stats import percentile
from shopmesh.local.mesh import LocalMesh

__all__ = ["REPLICAS", "measure"]

# The smallest mesh with a caller's sidecar in front of catalog: order may call GetProduct.
REPLICAS = {"catalog": 1, "order": 1}
GOAL_RATE = 1000  # the fixed rate; lower rates show the overhead below saturation
P99_RATIO_GOAL = 1.6
ENVOY_CPU_GOAL = 0.20  # vCPU per 1000 req/s (Istio publishes 0.20 for its sidecar)


@dataclass
class _Variant:
    label: str
    address: str
    latencies: list[float] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    dropped: int = 0
    seconds: float = 0.0
    cpu: Counter = field(default_factory=Counter)  # process label -> CPU seconds
    by_ghz: ghz.Ghz = field(default_factory=ghz.Ghz)  # the same calls, sent by ghz

    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def vcpu(self, process: str) -> float:
        return self.cpu[process] / self.seconds if self.seconds else 0.0


async def measure(
    mesh: LocalMesh, rates: tuple[float, ...], rounds: int, seconds: float
) -> list[Row]:
    catalog, order = mesh.replica("catalog", 0), mesh.replica("order", 0)
    addresses = {
        "direct (plaintext)": catalog.app_address,
        "two sidecars (mTLS)": f"127.0.0.1:{order.outbound_ports['catalog']}",
    }
    variants = {
        (rate, label): _Variant(label, address)
        for rate in rates
        for label, address in addresses.items()
    }
    meter = CpuMeter(
        {
            "catalog app": catalog.app.pid,
            "caller's sidecar": order.sidecar.process.pid,
            "catalog's sidecar": catalog.sidecar.process.pid,
            "load generator": os.getpid(),
        }
    )
    shop = await fixed_rate.learn(catalog.app_address)
    for address in addresses.values():  # warm connections and caches
        await fixed_rate.get_product(address, min(rates), 1.0, shop)
    for _ in range(rounds):
        for variant_key, variant in variants.items():
            rate = variant_key[0]
            meter.reset()
            started = time.monotonic()
            recorder = await fixed_rate.get_product(variant.address, rate, seconds, shop)
            variant.seconds += time.monotonic() - started
            variant.cpu.update(meter.read())
            variant.latencies += recorder.latencies["product"]
            variant.outcomes.update(recorder.outcomes["product"])
            variant.dropped += recorder.dropped
            await ghz.get_product(variant.address, rate, seconds, shop.product_ids, variant.by_ghz)
    rows = []
    for rate in rates:
        direct, proxied = (variants[rate, label] for label in addresses)
        rows += _rows(rate, direct, proxied, judged=rate == GOAL_RATE)
    for rate in rates:
        direct, proxied = (variants[rate, label] for label in addresses)
        rows += _ghz_rows(rate, direct, proxied)
    return rows


def _ratios(direct: list[float], proxied: list[float]) -> tuple[float, float]:
    """(p99 ratio, p50 added in ms) of the proxied calls over the direct ones."""
    ratio = percentile(proxied, 99) / percentile(direct, 99)
    return ratio, (percentile(proxied, 50) - percentile(direct, 50)) * 1000


def _ghz_rows(rate: float, direct: _Variant, proxied: _Variant) -> list[Row]:
    """ghz's figures for the same calls, beside ours."""
    ratio, p50_added = _ratios(direct.by_ghz.latencies, proxied.by_ghz.latencies)
    ours, _ = _ratios(direct.latencies, proxied.latencies)
    load = f"{rate:g}/s offered, " + "{:.0f}/s done"
    return [
        Row("GetProduct, 2 sidecars (ghz)", direct.label, load.format(direct.by_ghz.rate()),
            direct.by_ghz.latencies, errors_text(direct.by_ghz.outcomes)),
        Row("GetProduct, 2 sidecars (ghz)", proxied.label, load.format(proxied.by_ghz.rate()),
            proxied.by_ghz.latencies, errors_text(proxied.by_ghz.outcomes),
            figure=f"p99 ratio {ratio:.2f} (ours {ours:.2f}), p50 +{p50_added:.2f} ms"),
    ]  # fmt: skip


def _load(rate: float, variant: _Variant) -> str:
    text = f"{rate:g}/s offered, {variant.rate():.0f}/s done"
    return text + (f", {variant.dropped} dropped" if variant.dropped else "")


def _rows(rate: float, direct: _Variant, proxied: _Variant, judged: bool) -> list[Row]:
    ratio, p50_added = _ratios(direct.latencies, proxied.latencies)
    rows = [
        Row("GetProduct, 2 sidecars", direct.label, _load(rate, direct), direct.latencies,
            errors_text(direct.outcomes),
            figure=f"app {direct.vcpu('catalog app'):.2f} vCPU, "
                   f"load generator {direct.vcpu('load generator'):.2f} vCPU"),
        Row("GetProduct, 2 sidecars", proxied.label, _load(rate, proxied), proxied.latencies,
            errors_text(proxied.outcomes),
            figure=f"p99 ratio {ratio:.2f}, p50 +{p50_added:.2f} ms, "
                   f"app {proxied.vcpu('catalog app'):.2f} vCPU",
            goal=f"p99 ratio <= {P99_RATIO_GOAL}" if judged else "",
            met=ratio <= P99_RATIO_GOAL if judged else None),
    ]  # fmt: skip
    for envoy in ("caller's sidecar", "catalog's sidecar"):
        busy, idle = proxied.vcpu(envoy), direct.vcpu(envoy)
        per_1000 = (busy - idle) / max(proxied.rate(), 1e-9) * 1000
        rows.append(
            Row("Envoy CPU", envoy, f"{rate:g}/s offered, {proxied.rate():.0f}/s done",
                figure=f"{per_1000:.3f} vCPU per 1000 req/s (busy {busy:.3f}, idle {idle:.3f})",
                goal=f"<= {ENVOY_CPU_GOAL} vCPU" if judged else "",
                met=per_1000 <= ENVOY_CPU_GOAL if judged else None)
        )  # fmt: skip
    return rows
