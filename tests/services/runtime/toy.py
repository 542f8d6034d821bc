"""A tiny real service on the catalog contract, to test the runtime apart from any service.

GetProduct behaves by id: "" -> INVALID_ARGUMENT, "missing" -> NOT_FOUND,
"boom" -> an unexpected exception, "slow-<ms>" -> answers after that many ms.
"""

from __future__ import annotations

import asyncio

from mesh import contracts
from services.runtime import Database, Service
from services.runtime.errors import NotFound
from services.runtime.migrations import Migrations
from services.runtime.validation import Violations

catalog = contracts.service("catalog")


class ToyServicer(catalog.servicer_base):
    def __init__(self, config, store) -> None:
        self.store = store

    async def GetProduct(self, request, context):
        violations = Violations()
        violations.required(request.id, "id")
        violations.check()
        if request.id == "missing":
            raise NotFound("no product missing", metadata={"id": "missing"})
        if request.id == "boom":
            raise RuntimeError("secret internals: /etc/shadow")
        if request.id.startswith("slow-"):
            await asyncio.sleep(int(request.id.removeprefix("slow-")) / 1000)
        await self.store.probe()
        return catalog.messages.GetProductResponse(product=catalog.messages.Product(id=request.id))


async def open_toy_store(config):
    # The catalog's database (the toy serves the catalog contract), and no tables of its own.
    return await Database.open(config.database_url, Migrations(()), name="toy")


TOY = Service(name="catalog", open_store=open_toy_store, make_servicer=ToyServicer)
