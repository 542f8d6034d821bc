"""The local mesh the clients in other languages shop through: one for all of them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from shop.inventory.v1 import inventory_pb2

from mesh import contracts
from shopmesh.envoy.edge import EdgeSettings
from shopmesh.local.mesh import LocalMesh
from tests.shopmesh.local.meshclient import as_workload

# Two catalog replicas: a client balances over every address it is given.
REPLICAS = {"catalog": 2, "inventory": 1, "payment": 1, "order": 1}
Stock = Callable[[list[str]], dict[str, tuple[int, int]]]


@pytest.fixture(scope="package")
def mesh(tmp_path_factory):
    with LocalMesh(
        tmp_path_factory.mktemp("mesh"),
        replicas=REPLICAS,
        edge_settings=EdgeSettings(port=0),
        drain_seconds=1,
    ) as running:
        yield running


@pytest.fixture
def stock(mesh: LocalMesh) -> Stock:
    """sku -> (available, sold), asked as the ops workload (the one allowed to)."""

    def read(skus: list[str]) -> dict[str, tuple[int, int]]:
        with as_workload(mesh, "ops", mesh.replica("inventory", 0)) as channel:
            reply = (
                contracts.service("inventory")
                .stub(channel)
                .BatchGetStock(inventory_pb2.BatchGetStockRequest(skus=skus), timeout=10)
            )
        return {s.sku: (s.available, s.sold) for s in reply.stocks}

    return read
