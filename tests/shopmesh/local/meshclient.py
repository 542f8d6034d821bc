"""Clients of a running LocalMesh for tests: REST through the edge, gRPC as a mesh workload."""

from __future__ import annotations

import http.client
import json
import uuid
from dataclasses import dataclass
from typing import Any

import grpc

from shopmesh.local.mesh import LocalMesh, Replica


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("content-type", "").startswith("application/json"), self.body
        return json.loads(self.body)


def rest(
    mesh: LocalMesh,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    connection: http.client.HTTPConnection | None = None,
) -> Response:
    """One HTTP/1.1 request to the edge; `body` is sent as JSON unless it is bytes/str."""
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", mesh.edge_port, timeout=15)
    sent_headers = dict(headers or {})
    if body is not None and not isinstance(body, bytes | str):
        body = json.dumps(body)
    if body is not None:
        sent_headers.setdefault("content-type", "application/json")
    try:
        connection.request(method, path, body=body, headers=sent_headers)
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        if own:
            connection.close()


def as_customer(mesh: LocalMesh, customer: str, *scopes: str) -> dict[str, str]:
    """The `authorization` header of `customer`'s token (the mesh's development key)."""
    return {"authorization": mesh.tokens.bearer(customer, scopes)}


def order_body(customer: str, product: str = "kitchen-espresso-cup", quantity: int = 1) -> dict:
    """A valid checkout request in REST/JSON form. It names its customer, as clients
    written before tokens do: only that customer's token may send it."""
    return {
        "customerId": customer,
        "items": [{"productId": product, "quantity": quantity}],
        "shippingAddress": {
            "regionCode": "US",
            "addressLines": ["1 Main St"],
            "recipients": ["Ada Lovelace"],
        },
        "paymentMethod": {"card": {"token": "tok_visa"}},
        "requestId": str(uuid.uuid4()),
    }


def orders_of(mesh: LocalMesh, customer: str) -> list[dict]:
    """The customer's orders, as they list them with their token."""
    response = rest(mesh, "GET", "/v1/orders?pageSize=100", headers=as_customer(mesh, customer))
    assert response.status == 200, response.body
    return response.json()["orders"]


def as_workload(mesh: LocalMesh, workload: str, replica: Replica) -> grpc.Channel:
    """A channel to `replica`'s sidecar presenting `workload`'s mesh certificate."""
    identity = mesh.certs[workload]
    credentials = grpc.ssl_channel_credentials(
        root_certificates=mesh.layout.ca.read_bytes(),
        private_key=identity.key.read_bytes(),
        certificate_chain=identity.cert.read_bytes(),
    )
    # The sidecar's certificate names its service (DNS SAN), not 127.0.0.1.
    options = [("grpc.ssl_target_name_override", replica.service)]
    return grpc.secure_channel(replica.inbound_address, credentials, options)
