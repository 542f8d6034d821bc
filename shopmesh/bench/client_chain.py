"""Overhead of the mesh client chain: bare grpc.aio vs mesh.aio_connect, same server, one run.

The server runs in its own process (so its CPU is not the client's); the client
takes turns call by call (bare, then each chain variant, then bare again ...), so
machine noise hits all alike. The chain is measured with tracing as deployed
(OpenTelemetry SDK, parent-based 1 % sampling, spans batched to an exporter) for
calls with no current span (roots: each call a new trace, the sampler deciding)
and for calls made while serving an unsampled request (as the services make
almost all theirs), and with every call sampled. Two more variants show where
the time goes: the chain with tracing off (a no-op tracer provider) and a bare
call that sends a `traceparent` header.

    python -m shopmesh.bench.client_chain [--calls 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass

import grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import NoOpTracerProvider

import mesh
from mesh import config as mesh_config
from mesh import contracts
from shopmesh.bench import echo_server
from shopmesh.load.stats import percentile, table

catalog = contracts.service("catalog")
REQUEST = catalog.messages.GetProductRequest(id="bench")


class _DiscardingExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


@dataclass
class Result:
    label: str
    samples: list[float]

    def row(self) -> list[object]:
        ms = [s * 1000 for s in self.samples]
        return [self.label, len(ms), percentile(ms, 50), percentile(ms, 90), percentile(ms, 99)]


BARE = "bare grpc.aio"
DEFAULT_ROOT = "mesh chain, 1% sampled, root calls"
DEFAULT_IN_REQUEST = "mesh chain, 1% sampled, in an unsampled request"
ALL_SAMPLED = "mesh chain, all sampled"
UNTRACED = "mesh chain, tracing off"
BARE_HEADER = "bare grpc.aio + traceparent"
# The request a service is serving when it calls out: not sampled (99 in 100).
_UNSAMPLED_REQUEST = trace.NonRecordingSpan(
    trace.SpanContext(0x5EED << 64 | 1, 0x5EED, is_remote=False, trace_flags=trace.TraceFlags(0))
)


def _traceparent() -> tuple[tuple[str, str], ...]:
    return (("traceparent", f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-00"),)


async def _call(label: str, stub) -> float:
    if label == DEFAULT_IN_REQUEST:
        with trace.use_span(_UNSAMPLED_REQUEST):
            started = time.perf_counter()
            await stub.GetProduct(REQUEST, timeout=5)
            return time.perf_counter() - started
    metadata = _traceparent() if label == BARE_HEADER else None
    started = time.perf_counter()
    await stub.GetProduct(REQUEST, timeout=5, metadata=metadata)
    return time.perf_counter() - started


def _provider(sampler) -> TracerProvider:
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(_DiscardingExporter()))
    return provider


async def run(calls: int, address: str) -> list[Result]:
    """Every variant `calls` times, taking turns call by call; the bare call first."""
    config = mesh_config.MeshConfig(upstreams={"catalog": mesh_config.Upstream("catalog", address)})
    deployed = _provider(ParentBased(TraceIdRatioBased(0.01)))
    providers = {
        DEFAULT_ROOT: deployed,
        DEFAULT_IN_REQUEST: deployed,
        ALL_SAMPLED: _provider(ALWAYS_ON),
        UNTRACED: NoOpTracerProvider(),
    }
    bare = grpc.aio.insecure_channel(address)
    channels = {BARE: bare, BARE_HEADER: bare}
    for label, provider in providers.items():
        channels[label] = mesh.aio_connect("catalog", config=config, tracer_provider=provider)
    results = {label: Result(label, []) for label in channels}
    stubs = {label: catalog.stub(channel) for label, channel in channels.items()}
    try:
        for _ in range(200):  # warm up connections and caches
            for label, stub in stubs.items():
                await _call(label, stub)
        for _ in range(calls):
            for label, stub in stubs.items():
                results[label].samples.append(await _call(label, stub))
    finally:
        for channel in set(channels.values()):
            await channel.close()
        deployed.shutdown()
        providers[ALL_SAMPLED].shutdown()
    return list(results.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000, help="calls per variant")
    args = parser.parse_args(argv)
    with echo_server.spawned() as (_, port):
        results = asyncio.run(run(args.calls, f"127.0.0.1:{port}"))
    print("Mesh client chain overhead: unary GetProduct, loopback, 1 call in flight (goal <= 1.10)")
    print(report(results))
    return 0


def report(results: list[Result]) -> str:
    bare = results[0]
    rows = []
    for result in results:
        p50 = percentile(result.samples, 50) / percentile(bare.samples, 50)
        p99 = percentile(result.samples, 99) / percentile(bare.samples, 99)
        rows.append([*result.row(), p50, p99])
    return table(["variant", "calls", "p50 ms", "p90 ms", "p99 ms", "p50 ratio", "p99 ratio"], rows)


if __name__ == "__main__":
    sys.exit(main())
