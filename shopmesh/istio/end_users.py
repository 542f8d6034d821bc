"""End users on Kubernetes: the same tokens, rules and claims header as the local mesh.

- RequestAuthentication at the ingress gateway and at each workload that acts
  for end users (topology `end_user: required`): the issuer and audience of
  shopmesh/topology.yaml, the identity provider's public keys inline (JWKS).
  Istio rejects a bad token with 401 wherever it is checked.
- At the gateway, a DENY AuthorizationPolicy refuses calls of those services
  that carry no valid token (no request principal): for their gRPC paths and
  for their REST paths, because Istio's authorization runs before the
  transcoder at the gateway (ingress.py) and sees the path the client sent.
- At the workload, every caller's rule also needs a request principal
  (security.py), and the sidecar hands the app the verified payload in the
  header the services read (services/runtime/end_user.py), as the local sidecar.

The JWKS is istio/identity-provider/jwks.json, kept by hand: public keys only.
The committed one is a placeholder whose private keys no longer exist, so no
token passes until the platform team puts its identity provider's keys there
(or patches them in an overlay; see istio/README.md).
"""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

from mesh import contracts
from services.runtime.end_user import CLAIMS_HEADER
from shopmesh import topology
from shopmesh.istio.cluster import (
    EDGE_WORKLOAD,
    INGRESS_NAMESPACE,
    INGRESS_SELECTOR,
    INGRESS_TARGET_PORTS,
    metadata,
    service_selector,
)

__all__ = [
    "JWKS_FILE",
    "gateway_request_authentication",
    "gateway_requires_end_users",
    "jwks",
    "request_authentication",
    "rest_paths",
]

# Kept by hand beside the generated manifests (read from the checkout, as the rest of istio/).
JWKS_FILE = pathlib.Path("istio/identity-provider/jwks.json").resolve()
# Istio's "any authenticated request principal" (`<iss>/<sub>` of a verified token).
ANY_REQUEST_PRINCIPAL = "*"
_PATH_VARIABLE = re.compile(r"\{[^}]*\}")


def jwks() -> str:
    """The identity provider's public JWKS, compact, as RequestAuthentication carries it."""
    keys = json.loads(JWKS_FILE.read_text())
    private = [k.get("kid") for k in keys["keys"] if "d" in k]
    if private:
        raise ValueError(f"{JWKS_FILE}: private key material in {private}: public keys only")
    return json.dumps(keys, separators=(",", ":"), sort_keys=True)


def _jwt_rule(**extra: Any) -> dict[str, Any]:
    end_users = topology.load().end_users
    return {
        "issuer": end_users.issuer,
        "audiences": [end_users.audience],
        "jwks": jwks(),
        **extra,
    }


def gateway_request_authentication() -> dict[str, Any]:
    """Tokens checked at the gateway, and passed on: the workload checks them again."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "RequestAuthentication",
        "metadata": metadata("shop-end-users", ns=INGRESS_NAMESPACE),
        "spec": {
            "selector": {"matchLabels": INGRESS_SELECTOR},
            "jwtRules": [_jwt_rule(forwardOriginalToken=True)],
        },
    }


def request_authentication(service: str) -> dict[str, Any]:
    """Tokens checked at the workload; its app gets the verified payload, not the token."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "RequestAuthentication",
        "metadata": metadata(f"{service}-end-users"),
        "spec": {
            "selector": {"matchLabels": service_selector(service)},
            "jwtRules": [_jwt_rule(outputPayloadToHeader=CLAIMS_HEADER)],
        },
    }


def _template(rule) -> str:
    kind = rule.WhichOneof("pattern")
    value = getattr(rule, kind)
    return value.path if kind == "custom" else value


def rest_paths(policy: contracts.MethodPolicy) -> list[str]:
    """The paths of the method's HTTP rule as Istio matches them: exact, or a prefix
    ending in `*` where the template has a variable ("/v1/orders/{id}" -> "/v1/orders/*")."""
    if policy.http is None:
        return []
    bindings = [_template(policy.http), *map(_template, policy.http.additional_bindings)]
    paths = []
    for path in bindings:
        variable = _PATH_VARIABLE.search(path)
        paths.append(path[: variable.start()] + "*" if variable else path)
    return paths


def gateway_requires_end_users() -> dict[str, Any]:
    """At the gateway: no call of a service that acts for end users without a valid token.

    A DENY policy, because the gateway is shared: an ALLOW policy would deny every
    other app's traffic through it. For the same reason it names the ports of the
    gateway's HTTP listeners: a DENY rule of HTTP attributes alone also applies
    to TCP traffic, which has none of them, so it would deny every TCP
    connection through the gateway (istioctl analyze: IST0133)."""
    mesh_topology = topology.load()
    paths: set[str] = set()
    for service in sorted(mesh_topology.end_user_services):
        for path in mesh_topology.callers(service).get(EDGE_WORKLOAD, ()):
            paths.add(path)
            paths.update(rest_paths(contracts.method_policy(path)))
    http_ports = [str(port) for port in sorted(INGRESS_TARGET_PORTS.values())]
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": metadata("shop-end-users-required", ns=INGRESS_NAMESPACE),
        "spec": {
            "selector": {"matchLabels": INGRESS_SELECTOR},
            "action": "DENY",
            "rules": [
                {
                    "from": [{"source": {"notRequestPrincipals": [ANY_REQUEST_PRINCIPAL]}}],
                    "to": [{"operation": {"ports": http_ports, "paths": sorted(paths)}}],
                }
            ],
        },
    }
