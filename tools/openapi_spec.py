"""Finishes the OpenAPI description that protoc-gen-openapiv2 writes from proto/.

The generator reads the contracts: paths from the google.api.http rules, schemas
with the proto comments, `required` from (google.api.field_behavior) = REQUIRED,
and google.rpc.Status as every error's body. What it cannot know is what the
edge adds, which shopmesh/topology.yaml says: the services whose every call
needs an end user's token (`end_user: required`). This adds that as a security
scheme (and the 401 it answers without one), says that objects take no fields
but theirs (the edge's JSON guard answers 400 for any other), names the
document, and keeps only the tags of services the REST API has operations of.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from mesh import contracts
from shopmesh import topology as mesh_topology

__all__ = ["SECURITY_SCHEME", "finish", "finish_file"]

SECURITY_SCHEME = "endUserToken"
TITLE = "shopmesh REST API"
DESCRIPTION = (
    "The shop's REST/JSON API, served by the edge (`GET /v1/openapi.json`), generated from "
    "proto/ by protoc-gen-openapiv2. Every error, the edge's own included, is a JSON "
    "google.rpc.Status: `code` (a google.rpc.Code), `message`, and `details` "
    "(google.rpc.ErrorInfo, BadRequest naming each bad field, RetryInfo on a 429). "
    "Catalog browsing is anonymous; order operations act for the end user whose token "
    "they carry."
)
_STATUS = {"$ref": "#/definitions/Status"}


def _security_definition(topology: mesh_topology.Topology) -> dict[str, Any]:
    issuer = topology.end_users
    return {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": (
            "`Bearer <JWT>`: an end user's token, ES256, issuer "
            f"`{issuer.issuer}`, audience `{issuer.audience}`; the customer is its "
            "subject (`shopmesh token --customer NAME` signs one for the local mesh). "
            "Missing or invalid: 401 with WWW-Authenticate."
        ),
    }


def _secured_tags(topology: mesh_topology.Topology) -> set[str]:
    """Tags (the generator names them after the gRPC service) of end-user services."""
    return {contracts.service(name).descriptor.name for name in topology.end_user_services}


def finish(spec: dict[str, Any], topology: mesh_topology.Topology) -> dict[str, Any]:
    secured = _secured_tags(topology)
    used_tags: set[str] = set()
    any_secured = False
    for operations in spec["paths"].values():
        for operation in operations.values():
            used_tags.update(operation.get("tags", ()))
            if secured.intersection(operation.get("tags", ())):
                any_secured = True
                operation["security"] = [{SECURITY_SCHEME: []}]
                operation["responses"]["401"] = {
                    "description": "No end user's token, or an invalid one.",
                    "schema": _STATUS,
                }
    spec["info"] = {"title": TITLE, "description": DESCRIPTION, "version": "v1"}
    spec["tags"] = [tag for tag in spec.get("tags", []) if tag["name"] in used_tags]
    if any_secured:
        spec["securityDefinitions"] = {SECURITY_SCHEME: _security_definition(topology)}
    spec["definitions"]["Status"]["description"] = (
        "google.rpc.Status: the body of every error response."
    )
    for definition in spec["definitions"].values():
        # google.protobuf.Any declares its own (true): its fields are its type's.
        if definition.get("type") == "object" and "additionalProperties" not in definition:
            definition["additionalProperties"] = False
    return spec


def finish_file(path: pathlib.Path) -> None:
    spec = json.loads(path.read_text())
    finished = finish(spec, mesh_topology.load())
    path.write_text(json.dumps(finished, indent=2, ensure_ascii=False) + "\n")
