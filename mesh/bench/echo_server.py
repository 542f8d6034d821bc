"""A trivial grpc.aio CatalogService for benchmarks: answers GetProduct at once, nothing else.

python -m mesh.bench.echo_server        # prints the bound port on stdout, serves until killed
"""

from __future__ import annotations

import asyncio
import sys

import grpc

from mesh import contracts

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


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
