"""The server's interceptors run as one: each part wraps a method's handler once, in
the chain's order, and a call costs no lookup per part."""

from __future__ import annotations

from mesh import contracts
from services.runtime.interceptors import ServerChain
from services.runtime.server import create_server
from services.runtime.testing import connect, test_config
from services.runtime.unary import UnaryWrappingInterceptor

from .toy import TOY

catalog = contracts.service("catalog")


class Recording(UnaryWrappingInterceptor):
    """A part that notes when it wraps a method and, per call, when it runs."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self.name, self.log = name, log

    def wrap(self, behavior, method):
        self.log.append(f"wrap {self.name}")

        async def noted(request, context):
            self.log.append(f"run {self.name}")
            return await behavior(request, context)

        return noted


async def test_parts_wrap_each_method_once_and_run_outermost_first(databases):
    log: list[str] = []
    chain = ServerChain([Recording("outer", log), Recording("inner", log)])
    server, _ = await create_server(
        test_config("catalog", databases), TOY, extra_interceptors=[chain]
    )
    try:
        async with connect(server) as channel:
            stub = catalog.stub(channel)
            for _ in range(3):
                await stub.GetProduct(catalog.messages.GetProductRequest(id="a"))
    finally:
        await server.stop(0)
    assert log == ["wrap inner", "wrap outer"] + ["run outer", "run inner"] * 3
