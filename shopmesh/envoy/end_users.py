"""End users' tokens in Envoy: the jwt_authn provider, the headers only proxies may set,
and RBAC's "has a verified end user".

The edge checks tokens per route (required on the RPCs of services that act for
end users, checked if sent elsewhere) and keys the checkout limit on the
subject; the sidecar of such a service checks them again, hands the verified
claims to its app (services/runtime/end_user.py) and lets no call of the
service through without them.
"""

from __future__ import annotations

from typing import Any

from services.runtime.end_user import CLAIMS_HEADER
from shopmesh.envoy.templates import fill
from shopmesh.topology import Topology

__all__ = [
    "CLAIMS_HEADER",
    "CUSTOMER_HEADER",
    "JWT_FILTER",
    "PAYLOAD_METADATA",
    "ROUTE_REQUIRES_CUSTOMER",
    "ROUTE_TOKEN_OPTIONAL",
    "edge_filter",
    "principal",
    "route_requirement",
    "sidecar_filter",
    "strip_filter",
]

JWT_FILTER = "envoy.filters.http.jwt_authn"
# The subject of the verified token, set by the edge for its checkout limit.
CUSTOMER_HEADER = "x-shopmesh-customer"
# Where jwt_authn keeps a verified payload in the request's dynamic metadata.
PAYLOAD_METADATA = "end_user"
# The edge's requirement names (fragments/edge/end_user_tokens.yaml).
ROUTE_REQUIRES_CUSTOMER = "customer"
ROUTE_TOKEN_OPTIONAL = "anonymous"
_PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig"


def _provider(topology: Topology, jwks: str, *, at_edge: bool) -> dict[str, Any]:
    return fill(
        "end_user_provider",
        issuer=topology.end_users.issuer,
        audience=topology.end_users.audience,
        jwks=jwks,
        forward=at_edge,
        claims_header=None if at_edge else CLAIMS_HEADER,
        claim_to_headers=(
            [{"header_name": CUSTOMER_HEADER, "claim_name": "sub"}] if at_edge else None
        ),
        payload_metadata=PAYLOAD_METADATA,
    )


def strip_filter() -> dict[str, Any]:
    """Removes a client's copy of every header a proxy sets from a verified token."""
    return fill(
        "strip_end_user_headers",
        removals=[{"remove": name} for name in (CLAIMS_HEADER, CUSTOMER_HEADER)],
    )


def edge_filter(topology: Topology, jwks: str) -> dict[str, Any]:
    return fill(
        "edge/end_user_tokens",
        provider=_provider(topology, jwks, at_edge=True),
    )


def route_requirement(topology: Topology, service: str) -> dict[str, Any]:
    """The edge route's per-filter config: which requirement its calls must meet."""
    name = ROUTE_REQUIRES_CUSTOMER if topology.needs_end_user(service) else ROUTE_TOKEN_OPTIONAL
    return {
        JWT_FILTER: {
            "@type": _PER_ROUTE,
            "requirement_name": name,
        }
    }


def sidecar_filter(topology: Topology, service: str, jwks: str) -> dict[str, Any] | None:
    """The sidecar's jwt_authn filter, only for a service that acts for end users."""
    if not topology.needs_end_user(service):
        return None
    return {
        "name": JWT_FILTER,
        "typed_config": fill(
            "sidecar/end_user_tokens",
            provider=_provider(topology, jwks, at_edge=False),
        ),
    }


def principal() -> dict[str, Any]:
    """RBAC: the call carries an end user jwt_authn verified."""
    return fill("sidecar/end_user_principal", payload_metadata=PAYLOAD_METADATA)
