"""Opaque, validated page tokens.

A token is URL-safe base64 (unpadded) of a small JSON object: a format version,
a hash of the request's filter and the position to continue from. Clients must
not build tokens; the server rejects one that does not decode or that was made
for another filter with INVALID_ARGUMENT naming the token field, rather than
silently returning a page of something else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from services.runtime.validation import Violations

__all__ = ["decode_offset", "decode_page_token", "encode_page_token"]

_VERSION = 1
_MAX_TOKEN_LENGTH = 512


def _filter_hash(filter: Mapping[str, Any]) -> str:
    canonical = json.dumps(filter, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_page_token(filter: Mapping[str, Any], position: Any) -> str:
    """A token to continue a listing with `filter` at `position` (any JSON value)."""
    body = json.dumps(
        {"v": _VERSION, "f": _filter_hash(filter), "p": position}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_page_token(
    token: str, filter: Mapping[str, Any], violations: Violations, field: str = "page_token"
) -> Any:
    """The position in `token`, or None (with a violation added) if it is not valid here."""
    if not token:
        return None
    try:
        if len(token) > _MAX_TOKEN_LENGTH:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
        if not isinstance(body, dict) or body.get("v") != _VERSION or "p" not in body:
            raise ValueError("not a page token")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        violations.add(field, "is not a page token this server issued")
        return None
    if body.get("f") != _filter_hash(filter):
        violations.add(field, "was issued for a different filter; keep the filter across pages")
        return None
    return body["p"]


def decode_offset(
    token: str, filter: Mapping[str, Any], violations: Violations, field: str = "page_token"
) -> int:
    """The row offset in an offset-based token; 0 when there is no token (or it is invalid)."""
    position = decode_page_token(token, filter, violations, field)
    if position is None:
        return 0
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        violations.add(field, "is not a page token this server issued")
        return 0
    return position
