"""gen/openapi/: the REST API the edge serves, described from the contracts."""

from __future__ import annotations

import json

import pytest
import schemathesis
from google.api import http_pb2

from mesh import contracts
from shopmesh import topology as mesh_topology
from shopmesh.envoy import openapi

VERBS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def spec() -> dict:
    return json.loads(openapi.committed().read_text())


def _rules(rule: http_pb2.HttpRule):
    yield rule
    yield from rule.additional_bindings


def _edge_routes() -> set[tuple[str, str, str]]:
    """(verb, path template, gRPC method path) of every REST binding the edge exposes."""
    topology = mesh_topology.load()
    routes = set()
    for service in topology.upstreams("edge"):
        for path in topology.callers(service)["edge"]:
            policy = contracts.method_policy(path)
            for rule in _rules(policy.http) if policy.http else ():
                verb = rule.WhichOneof("pattern")
                routes.add((verb, getattr(rule, verb), path))
    return routes


def test_it_describes_exactly_the_rest_routes_of_the_edge(spec):
    described = {
        (verb, path, f"/{operation['operationId'].replace('_', '/')}")
        for path, operations in spec["paths"].items()
        for verb, operation in operations.items()
    }
    expected = {
        (verb, path, f"/{grpc_path.split('.')[-1]}") for verb, path, grpc_path in _edge_routes()
    }
    assert described == expected


def test_operations_of_end_user_services_need_a_bearer_token(spec):
    scheme = spec["securityDefinitions"]["endUserToken"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert "Bearer" in scheme["description"]
    needing = mesh_topology.load().end_user_services
    for operations in spec["paths"].values():
        for operation in operations.values():
            service = operation["operationId"].split("Service_")[0].lower()
            secured = operation.get("security") == [{"endUserToken": []}]
            assert secured == (service in needing), operation["operationId"]
            assert ("401" in operation["responses"]) == secured


def test_fields_carry_their_comments_and_required_marks(spec):
    place = spec["definitions"]["PlaceOrderRequest"]
    assert place["required"] == ["items", "shippingAddress", "paymentMethod", "requestId"]
    assert place["additionalProperties"] is False  # the edge refuses other fields
    item = spec["definitions"]["OrderItem"]["properties"]["quantity"]
    assert item["description"] == "Number of units, 1 to 100."
    order = spec["definitions"]["Order"]["properties"]
    assert order["status"]["readOnly"] is True  # OUTPUT_ONLY
    assert spec["paths"]["/v1/products:batchGet"]["get"]["parameters"][0]["required"] is True


def test_every_error_is_a_google_rpc_status(spec):
    status = spec["definitions"]["Status"]
    assert set(status["properties"]) == {"code", "message", "details"}
    assert status["properties"]["details"]["items"]["$ref"] == "#/definitions/Any"
    for operations in spec["paths"].values():
        for operation in operations.values():
            errors = [r for code, r in operation["responses"].items() if code != "200"]
            assert errors and all(r["schema"] == {"$ref": "#/definitions/Status"} for r in errors)


def test_schemathesis_reads_every_operation():
    schema = schemathesis.openapi.from_path(str(openapi.committed()))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(_edge_routes())


def test_the_edge_can_serve_it():
    assert openapi.committed().stat().st_size < openapi.MAX_BYTES
