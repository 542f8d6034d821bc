"""Catalog GetProduct straight to the app, through two sidecars, and through their floor.

The local mesh runs one catalog replica and one order replica. "direct" calls
the catalog app on its plaintext port; "two sidecars" calls the order
replica's outbound port for catalog, so each call crosses the caller's Envoy,
mTLS, the catalog's Envoy (RBAC) and reaches the same app; "floor" crosses two
minimal Envoys with the same mTLS and nothing else (sidecar_floor.py), run
beside the mesh in the same run. Rounds alternate between the three at the same
fixed arrival rate, so machine noise hits all alike. At the lowest rate the
rounds run twice: as they are, and while a second load keeps one core busy (a
process spinning on it), as on a machine other work shares.

Each round also runs the same direct and sidecar calls with ghz (bench/ghz.py),
a load generator of the field, and its rows are printed beside ours: the
cross-check that the sidecars' cost is not an artefact of our generator.

Each Envoy's CPU comes from /proc. What a sidecar burns while other variants
run (health checks only) is subtracted as its idle cost, and so is the floor's
(nothing). Each sidecar's CPU per 1000 req/s is reported as a ratio to its
floor's counterpart (the caller's sidecar to the outbound floor Envoy, the
catalog's to the inbound one), measured over the same calls in the same run.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from shopmesh.bench import fixed_rate, ghz, sidecar_floor
from shopmesh.bench.proc import CpuMeter
from shopmesh.bench.row import Row, errors_text
from shopmesh.load.stats import percentile
from shopmesh.local.mesh import LocalMesh

__all__ = ["REPLICAS", "measure"]

# The smallest mesh with a caller's sidecar in front of catalog: order may call GetProduct.
REPLICAS = {"catalog": 1, "order": 1}
P99_RATIO_GOAL = 1.6  # two sidecars' p99 over direct, judged below saturation
P99_GOAL_RATE = 300
ENVOY_CPU_RATIO_GOAL = 1.15  # a sidecar's CPU per request over its floor's
DIRECT, SIDECARS = "direct (plaintext)", "two sidecars (mTLS)"
FLOOR = "floor: two minimal Envoys (mTLS)"
QUIET, BUSY = "", "one core busy"
# Which Envoy each sidecar is compared with.
FLOOR_OF = {"caller's sidecar": "outbound floor Envoy", "catalog's sidecar": "inbound floor Envoy"}


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


@contextlib.contextmanager
def _one_core_busy(busy: bool) -> Iterator[None]:
    """A process spinning on one core while the block runs (when `busy`)."""
    if not busy:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


async def measure(
    mesh: LocalMesh, rates: tuple[float, ...], rounds: int, seconds: float, by_ghz: bool = True
) -> list[Row]:
    catalog, order = mesh.replica("catalog", 0), mesh.replica("order", 0)
    with sidecar_floor.running(mesh, "order", "catalog", catalog.app_port) as floor:
        addresses = {
            DIRECT: catalog.app_address,
            SIDECARS: f"127.0.0.1:{order.outbound_ports['catalog']}",
            FLOOR: floor.address,
        }
        conditions = [(rate, QUIET) for rate in rates] + [(min(rates), BUSY)]
        variants = {
            (rate, condition, label): _Variant(label, address)
            for rate, condition in conditions
            for label, address in addresses.items()
        }
        meter = CpuMeter(
            {
                "catalog app": catalog.app.pid,
                "caller's sidecar": order.sidecar.process.pid,
                "catalog's sidecar": catalog.sidecar.process.pid,
                "outbound floor Envoy": floor.outbound.pid,
                "inbound floor Envoy": floor.inbound.pid,
                "load generator": os.getpid(),
            }
        )
        shop = await fixed_rate.learn(catalog.app_address)
        for address in addresses.values():  # warm connections and caches
            await fixed_rate.get_product(address, min(rates), 1.0, shop)
        for _ in range(rounds):
            for rate, condition in conditions:
                with _one_core_busy(condition == BUSY):
                    for label in addresses:
                        variant = variants[rate, condition, label]
                        await _round(variant, rate, seconds, shop, meter)
                        if by_ghz and condition == QUIET and label != FLOOR:
                            await ghz.get_product(
                                variant.address, rate, seconds, shop.product_ids, variant.by_ghz
                            )
    rows = []
    for rate, condition in conditions:
        rows += _rows(rate, condition, *(variants[rate, condition, label] for label in addresses))
    if by_ghz:
        for rate in rates:
            rows += _ghz_rows(rate, variants[rate, QUIET, DIRECT], variants[rate, QUIET, SIDECARS])
    return rows


async def _round(variant: _Variant, rate: float, seconds: float, shop, meter: CpuMeter) -> None:
    meter.reset()
    started = time.monotonic()
    recorder = await fixed_rate.get_product(variant.address, rate, seconds, shop)
    variant.seconds += time.monotonic() - started
    variant.cpu.update(meter.read())
    variant.latencies += recorder.latencies["product"]
    variant.outcomes.update(recorder.outcomes["product"])
    variant.dropped += recorder.dropped


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


def _load(rate: float, condition: str, variant: _Variant) -> str:
    text = f"{rate:g}/s offered, {variant.rate():.0f}/s done"
    text += f", {variant.dropped} dropped" if variant.dropped else ""
    return text + (f", {condition}" if condition else "")


def _per_1000(variant: _Variant, process: str, idle: float) -> float:
    """CPU (vCPU) per 1000 req/s of `process` over `variant`'s calls, less its idle cost."""
    return (variant.vcpu(process) - idle) / max(variant.rate(), 1e-9) * 1000


def _rows(
    rate: float, condition: str, direct: _Variant, proxied: _Variant, floor: _Variant
) -> list[Row]:
    ratio, p50_added = _ratios(direct.latencies, proxied.latencies)
    floor_ratio, floor_added = _ratios(direct.latencies, floor.latencies)
    judged = rate == P99_GOAL_RATE
    bench = "GetProduct, 2 sidecars"
    rows = [
        Row(bench, direct.label, _load(rate, condition, direct), direct.latencies,
            errors_text(direct.outcomes),
            figure=f"floor; app {direct.vcpu('catalog app'):.2f} vCPU, "
                   f"load generator {direct.vcpu('load generator'):.2f} vCPU"),
        Row(bench, floor.label, _load(rate, condition, floor), floor.latencies,
            errors_text(floor.outcomes),
            figure=f"p99 ratio {floor_ratio:.2f}, p50 +{floor_added:.2f} ms"),
        Row(bench, proxied.label, _load(rate, condition, proxied), proxied.latencies,
            errors_text(proxied.outcomes),
            figure=f"p99 ratio {ratio:.2f}, p50 +{p50_added:.2f} ms "
                   f"({percentile(proxied.latencies, 99) / percentile(floor.latencies, 99):.2f}x "
                   f"the floor's p99)",
            goal=f"p99 ratio <= {P99_RATIO_GOAL}" if judged else "",
            met=ratio <= P99_RATIO_GOAL if judged else None),
    ]  # fmt: skip
    if condition:
        return rows  # CPU per request is judged on the rounds without a spinning neighbour
    for envoy, its_floor in FLOOR_OF.items():
        idle = direct.vcpu(envoy)
        sidecar = _per_1000(proxied, envoy, idle)
        minimal = _per_1000(floor, its_floor, direct.vcpu(its_floor))
        cpu_ratio = sidecar / max(minimal, 1e-9)
        rows.append(
            Row("Envoy CPU", f"{envoy} vs {its_floor}",
                f"{rate:g}/s offered, {proxied.rate():.0f} / {floor.rate():.0f}/s done",
                figure=f"{sidecar:.3f} vs {minimal:.3f} vCPU per 1000 req/s: {cpu_ratio:.2f}x "
                       f"(sidecar busy {proxied.vcpu(envoy):.3f}, idle {idle:.3f})",
                goal=f"ratio <= {ENVOY_CPU_RATIO_GOAL}",
                met=cpu_ratio <= ENVOY_CPU_RATIO_GOAL)
        )  # fmt: skip
    return rows
