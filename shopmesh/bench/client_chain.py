"""Overhead of the mesh client chain: bare grpc.aio vs mesh.aio_connect, same server, one run.

The server runs in its own process (so its CPU is not the client's); the client
alternates rounds of every variant so machine noise hits all alike. The chain is
measured with tracing as deployed (OpenTelemetry SDK, parent-based 1 % sampling,
spans batched to an exporter) and with every call sampled.

    python -m shopmesh.bench.client_chain [--calls 4000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass

import grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

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


async def _measure(stub, calls: int, into: list[float]) -> None:
    for _ in range(calls):
        started = time.perf_counter()
        await stub.GetProduct(REQUEST, timeout=5)
        into.append(time.perf_counter() - started)


def _provider(sampler) -> TracerProvider:
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(_DiscardingExporter()))
    return provider


async def run(calls: int, rounds: int, address: str) -> list[Result]:
    config = mesh_config.MeshConfig(upstreams={"catalog": mesh_config.Upstream("catalog", address)})
    providers = {
        "mesh chain, 1% sampled": _provider(ParentBased(TraceIdRatioBased(0.01))),
        "mesh chain, all sampled": _provider(ALWAYS_ON),
    }
    channels = {"bare grpc.aio": grpc.aio.insecure_channel(address)}
    for label, provider in providers.items():
        channels[label] = mesh.aio_connect("catalog", config=config, tracer_provider=provider)
    results = {label: Result(label, []) for label in channels}
    stubs = {label: catalog.stub(channel) for label, channel in channels.items()}
    try:
        for stub in stubs.values():
            await _measure(stub, 200, [])  # warm up connections and caches
        per_round = max(1, calls // rounds)
        for _ in range(rounds):
            for label, stub in stubs.items():
                await _measure(stub, per_round, results[label].samples)
    finally:
        for channel in channels.values():
            await channel.close()
        for provider in providers.values():
            provider.shutdown()
    return list(results.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000, help="calls per variant")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds")
    args = parser.parse_args(argv)
    with echo_server.spawned() as (_, port):
        results = asyncio.run(run(args.calls, args.rounds, f"127.0.0.1:{port}"))
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
