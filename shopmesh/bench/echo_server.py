"""A trivial grpc.aio CatalogService for benchmarks: answers GetProduct at once, nothing else.

python -m shopmesh.bench.echo_server        # prints the bound port on stdout, serves until killed

Benchmarks run it in a process of its own (`spawned()`), so its CPU is not theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator

import grpc

from mesh import contracts
from services.runtime.testing import terminate

catalog = contracts.service("catalog")
PRODUCT = catalog.messages.Product(id="bench", name="Benchmark product", sku="BENCH-1")


class EchoCatalog(catalog.servicer_base):
    async def GetProduct(self, request, context):
        return catalog.messages.GetProductResponse(product=PRODUCT)


async def main(address: str = "127.0.0.1:0") -> None:
    server = grpc.aio.server()
    catalog.add_to_server(EchoCatalog(), server)
    port = server.add_insecure_port(address)
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


@contextlib.contextmanager
def spawned() -> Iterator[tuple[int, int]]:
    """(pid, port) of an echo server in its own process, stopped on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "shopmesh.bench.echo_server"], stdout=subprocess.PIPE, text=True
    )
    try:
        yield process.pid, int(process.stdout.readline())
    finally:
        terminate(process, grace=10)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
