"""What frontends send that an OpenAPI description never generates, applied to
schemathesis' requests: bytes that are no UTF-8 in a path or query parameter or in
the JSON body, a scalar where the contract has a list (and the reverse), an enum
number the enum does not define, an oversize URL or header. And, to get past
validation into the checkout itself, a valid checkout, or one with one of the
generated fields in it.

Each mutation takes the request as `requests` keyword arguments (schemathesis'
`Case.as_transport_kwargs`) and draws what it changes from hypothesis, so a
failure shrinks and replays like any other example.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import strategies as st

from services.seed import SEED_PRODUCTS

from ..meshclient import order_body

__all__ = ["MUTATIONS", "mutate"]

Request = dict[str, Any]
Path = tuple[Any, ...]  # keys and indexes into a JSON value

# Percent-encodable bytes that are no UTF-8: a lone continuation byte, a two-byte
# sequence with a bad second byte, a UTF-16 surrogate, a truncated sequence.
INVALID_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe2\x82")
UNDEFINED_ENUM_NUMBERS = (99, -1, 1000, 2**31 - 1)
PRODUCT_IDS = tuple(product.id for product in SEED_PRODUCTS)
_ENUM_NAME = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$")


def _walk(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _walk(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _walk(child, (*path, index))


def _replace(root: Any, path: Path, value: Any) -> None:
    for key in path[:-1]:
        root = root[key]
    root[path[-1]] = value


def _body_paths(request: Request, wanted: Callable[[Any], bool]) -> list[Path]:
    body = request.get("json")
    return [path for path, value in _walk(body) if path and wanted(value)]


def _pick_and_replace(data, request: Request, paths: list[Path], new: Callable[[Any], Any]):
    if not paths:
        return request
    path = data.draw(st.sampled_from(paths), label="field")
    old = request["json"]
    for key in path:
        old = old[key]
    _replace(request["json"], path, new(old))
    return request


def invalid_utf8(data, request: Request) -> Request:
    bad = data.draw(st.sampled_from(INVALID_UTF8), label="bytes")
    params = request.get("params") or {}
    places = [*(("query", name) for name in params), ("path", None)]
    if request.get("json") is not None:
        places.append(("body", None))
    where, name = data.draw(st.sampled_from(places), label="where")
    if where == "query":
        value = params[name]
        value = value[0] if isinstance(value, list) and value else value
        params[name] = str(value).encode() + bad
    elif where == "path":
        # The last segment of every path of this API starts with its parameter, if any.
        head, _, last = request["url"].rpartition("/")
        request["url"] = f"{head}/{''.join(f'%{b:02X}' for b in bad)}{last}"
    else:
        text = json.dumps(request.pop("json")).encode()
        # Inside the first string value: after `": "`.
        at = text.find(b'": "')
        text = text[: at + 4] + bad + text[at + 4 :] if at >= 0 else text + bad
        request["data"] = text
        request.setdefault("headers", {})["Content-Type"] = "application/json"
    return request


def scalar_for_list(data, request: Request) -> Request:
    lists = _body_paths(request, lambda v: isinstance(v, list))
    return _pick_and_replace(data, request, lists, lambda old: old[0] if old else "x")


def list_for_scalar(data, request: Request) -> Request:
    scalars = _body_paths(request, lambda v: not isinstance(v, dict | list))
    return _pick_and_replace(data, request, scalars, lambda old: [old])


def undefined_enum(data, request: Request) -> Request:
    enums = _body_paths(request, lambda v: isinstance(v, str) and bool(_ENUM_NAME.match(v)))
    number = data.draw(st.sampled_from(UNDEFINED_ENUM_NUMBERS), label="number")
    return _pick_and_replace(data, request, enums, lambda old: number)


def oversize(data, request: Request) -> Request:
    size = data.draw(st.integers(8_000, 40_000), label="size")
    if data.draw(st.booleans(), label="in a header"):
        request.setdefault("headers", {})["x-fuzz-padding"] = "a" * size
    else:
        head, _, last = request["url"].rpartition("/")
        request["url"] = f"{head}/{'a' * size}{last}"
    return request


def near_valid_checkout(data, request: Request) -> Request:
    generated = request.get("json")
    if not (isinstance(generated, dict) and "items" in generated):
        return request
    cart = st.lists(st.sampled_from(PRODUCT_IDS), min_size=1, max_size=3, unique=True)
    products = data.draw(cart, label="cart")
    body = order_body("")  # "": the token's customer
    body["items"] = [{"productId": product, "quantity": 1} for product in products]
    # Half valid, half with one field as generated: wrong in one place (or not).
    if data.draw(st.booleans(), label="one field as generated"):
        key = data.draw(st.sampled_from(sorted(generated)), label="generated field")
        body[key] = generated[key]
    request["json"] = body
    return request


MUTATIONS: dict[str, Callable[[Any, Request], Request]] = {
    "invalid UTF-8": invalid_utf8,
    "a scalar for a list": scalar_for_list,
    "a list for a scalar": list_for_scalar,
    "an undefined enum": undefined_enum,
    "oversize": oversize,
    "a near-valid checkout": near_valid_checkout,
}


def mutate(data, request: Request) -> tuple[str, Request]:
    """The request as generated (half the time) or with one mutation; its name. A checkout
    is a near-valid one a third of the time: the only way past validation."""
    body = request.get("json")
    if isinstance(body, dict) and "items" in body and data.draw(st.integers(0, 2)) == 0:
        return "a near-valid checkout", near_valid_checkout(data, request)
    name = data.draw(st.sampled_from(["as generated", *MUTATIONS]) | st.just("as generated"))
    return name, request if name == "as generated" else MUTATIONS[name](data, request)
