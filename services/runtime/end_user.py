"""The end user a request acts for, as the service's own sidecar verified them.

The sidecar (Envoy jwt_authn locally, Istio's RequestAuthentication on
Kubernetes) checks the caller's JWT (signature, issuer, audience, expiry) and
hands the app the verified payload in CLAIMS_HEADER, base64url-encoded JSON.
Every proxy removes a copy of that header that a client sent, and an app
listens only behind its sidecar (loopback locally, the pod's network
namespace on Kubernetes), so a value in it was put there by the sidecar: the
app trusts it without the issuer's keys and never sees the raw token.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

import grpc

from services.runtime.errors import Unauthenticated

__all__ = ["CLAIMS_HEADER", "EndUser", "end_user", "require_end_user"]

CLAIMS_HEADER = "x-shopmesh-end-user-claims"


@dataclass(frozen=True)
class EndUser:
    """Who the request acts for: the token's subject and the scopes it grants."""

    subject: str
    scopes: frozenset[str] = frozenset()

    @classmethod
    def from_claims(cls, claims: dict) -> EndUser | None:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            return None
        # OAuth's `scope` is one space-separated string (RFC 8693); some issuers send a list.
        scope = claims.get("scope", "")
        words = scope.split() if isinstance(scope, str) else scope
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            return None
        return cls(subject, frozenset(words))

    def may(self, scope: str) -> bool:
        return scope in self.scopes


def _decode(value: str) -> dict | None:
    try:
        payload = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def end_user(context: grpc.aio.ServicerContext) -> EndUser | None:
    """The verified end user of this call, or None when the sidecar delivered none."""
    values = [v for k, v in context.invocation_metadata() or () if k == CLAIMS_HEADER]
    if len(values) != 1 or not isinstance(values[0], str):
        return None  # a sidecar sets exactly one; anything else was not its doing
    claims = _decode(values[0])
    return EndUser.from_claims(claims) if claims is not None else None


def require_end_user(context: grpc.aio.ServicerContext) -> EndUser:
    """The verified end user, or UNAUTHENTICATED: a call without one gets nothing."""
    found = end_user(context)
    if found is None:
        raise Unauthenticated(
            "this call needs an end user's token, verified by the service's sidecar;"
            " send `authorization: Bearer <token>`"
        )
    return found
