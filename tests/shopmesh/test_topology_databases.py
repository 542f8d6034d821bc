"""shopmesh/topology.yaml's databases: one list for the local PostgreSQL and istio/."""

from __future__ import annotations

import copy

import pytest
import yaml

from shopmesh import topology

DOCUMENT = yaml.safe_load(topology.TOPOLOGY_FILE.read_text())


def _parsed(**databases: dict[str, str]) -> topology.Topology:
    document = copy.deepcopy(DOCUMENT)
    for service, declared in databases.items():
        document["services"][service]["databases"] = declared
    return topology.parse(document)


def test_each_database_belongs_to_one_service_with_its_variable() -> None:
    mesh = topology.load()
    assert mesh.databases == {
        "catalog": ("catalog", "SHOPMESH_DATABASE_URL"),
        "inventory": ("inventory", "SHOPMESH_DATABASE_URL"),
        "order": ("order", "SHOPMESH_DATABASE_URL"),
        "payment": ("payment", "SHOPMESH_DATABASE_URL"),
        "payment_gateway": ("payment", "SHOPMESH_GATEWAY_DATABASE_URL"),
    }
    assert mesh.databases_of("payment") == {
        "payment": "SHOPMESH_DATABASE_URL",
        "payment_gateway": "SHOPMESH_GATEWAY_DATABASE_URL",
    }


@pytest.mark.parametrize(
    ("databases", "error"),
    [
        ({"order": {}}, "order has no database for SHOPMESH_DATABASE_URL"),
        ({"order": {"catalog": "SHOPMESH_DATABASE_URL"}}, "catalog belongs to catalog"),
        ({"order": {"Order-DB": "SHOPMESH_DATABASE_URL"}}, "not a plain database name"),
        (
            {"order": {"order": "SHOPMESH_DATABASE_URL", "ledger": "SHOPMESH_DATABASE_URL"}},
            "two databases the same variable",
        ),
    ],
    ids=["no own database", "shared database", "quoted name", "one variable twice"],
)
def test_a_wrong_database_list_is_refused(databases, error) -> None:
    with pytest.raises(ValueError, match=error):
        _parsed(**databases)
