"""A real grpc.aio server whose answers a test scripts: fail the first N calls, always fail, ...

It implements CatalogService.GetProduct and PaymentService.Charge from the
contracts, counts every call that reaches it and records the deadline it saw.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from mesh import config as mesh_config
from mesh import contracts

catalog = contracts.service("catalog")
payment = contracts.service("payment")


@dataclass
class Script:
    """What the server does with each call: `failures` codes first, then success."""

    failures: list[grpc.StatusCode] = field(default_factory=list)
    always: grpc.StatusCode | None = None
    delay: float = 0.0
    calls: int = 0
    time_remaining: list[float | None] = field(default_factory=list)
    metadata: list[dict[str, str]] = field(default_factory=list)
    # Optional: what the handler does instead of answering by itself (e.g. call onwards).
    forward: Callable[[Any], Awaitable[Any]] | None = None

    async def answer(self, context: grpc.aio.ServicerContext) -> None:
        self.calls += 1
        self.time_remaining.append(context.time_remaining())
        self.metadata.append({k: v for k, v in context.invocation_metadata()})
        if self.delay:
            await asyncio.sleep(self.delay)
        code = self.always or (self.failures.pop(0) if self.failures else None)
        if code is not None:
            await context.abort(code, f"scripted {code.name}")


class _Catalog(catalog.servicer_base):
    def __init__(self, script: Script) -> None:
        self.script = script

    async def GetProduct(self, request, context):
        await self.script.answer(context)
        if self.script.forward:
            return await self.script.forward(request)
        return catalog.messages.GetProductResponse(
            product=catalog.messages.Product(id=request.id, name="scripted")
        )


class _Payment(payment.servicer_base):
    def __init__(self, script: Script) -> None:
        self.script = script

    async def Charge(self, request, context):
        await self.script.answer(context)
        return payment.messages.ChargeResponse(
            payment=payment.messages.Payment(id="pay-1", order_id=request.order_id)
        )


async def start(script: Script, interceptors: tuple = ()) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server(interceptors=interceptors)
    catalog.add_to_server(_Catalog(script), server)
    payment.add_to_server(_Payment(script), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


def config_for(address: str, *names: str, app_retries: bool = True) -> mesh_config.MeshConfig:
    """A mesh config in which every upstream name resolves to one address."""
    return mesh_config.MeshConfig(
        upstreams={n: mesh_config.Upstream(n, address) for n in names}, app_retries=app_retries
    )
