"""The edge's JSON guard: fragments/edge/json_guard.lua plus its schema (a Lua guard,
see lua_guard.py).

The schema tables are generated from the contracts: which REST routes carry a
JSON body, of which request message, which JSON keys every message in it
accepts (proto3 JSON accepts a field's lowerCamelCase json_name and its proto
name alike) and which of them are lists or maps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from google.api import http_pb2
from google.protobuf import descriptor

from mesh import contracts
from shopmesh.envoy import lua_guard

__all__ = ["lua_pattern", "render", "schema"]

# Messages with their own JSON form (a string, a number, any value): their
# insides are not fields to check.
_SPECIAL_JSON = re.compile(
    r"^google\.protobuf\.(Any|Duration|Timestamp|FieldMask|Struct|Value|ListValue|Empty"
    r"|(Double|Float|Int64|UInt64|Int32|UInt32|Bool|String|Bytes)Value)$"
)
_HTTP_VERBS = ("get", "put", "post", "delete", "patch")


def lua_pattern(template: str) -> str:
    """A google.api.http path template as an anchored Lua pattern:
    "/v1/orders/{id}:cancel" -> "^/v1/orders/[^/]+:cancel$"."""

    def literal(text: str) -> str:
        pieces = re.split(r"(\*\*|\*)", text)
        return "".join(
            ".+"
            if piece == "**"
            else "[^/]+"
            if piece == "*"
            else re.sub(r"([^\w/:])", r"%\1", piece)
            for piece in pieces
        )

    out = []
    for text, variable in re.findall(r"([^{]*)(?:\{([^}]*)\})?", template):
        out.append(literal(text))
        if variable:
            out.append(literal(variable.partition("=")[2] or "*"))
    return "^" + "".join(out) + "$"


def _bindings(rule: http_pb2.HttpRule) -> Iterable[http_pb2.HttpRule]:
    yield rule
    yield from rule.additional_bindings


def _verb_and_path(rule: http_pb2.HttpRule) -> tuple[str, str]:
    kind = rule.WhichOneof("pattern")
    if kind == "custom":
        return rule.custom.kind.upper(), rule.custom.path
    assert kind in _HTTP_VERBS, kind
    return kind.upper(), getattr(rule, kind)


def _single_value(field: descriptor.FieldDescriptor, messages: dict) -> Any:
    """What one value of `field` holds: false, or the name of a message to inspect."""
    if field.message_type is None or _SPECIAL_JSON.match(field.message_type.full_name):
        return False
    _add_message(field.message_type, messages)
    return field.message_type.full_name


def _field_value(field: descriptor.FieldDescriptor, messages: dict) -> Any:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return {"map": _single_value(field.message_type.fields_by_name["value"], messages)}
    if field.is_repeated:
        return {"list": _single_value(field, messages)}
    return _single_value(field, messages)


def _add_message(message: descriptor.Descriptor, messages: dict) -> None:
    if message.full_name in messages:
        return
    fields: dict[str, Any] = {}
    messages[message.full_name] = fields  # before recursing: messages may nest themselves
    for field in message.fields:
        value = _field_value(field, messages)
        fields[field.json_name] = value
        fields[field.name] = value


def schema(services: Iterable[contracts.ServiceContract]) -> tuple[list[dict], dict]:
    """(ROUTES, MESSAGES) for every HTTP binding with a body."""
    routes: list[dict] = []
    messages: dict[str, dict] = {}
    for service in services:
        for policy in service.methods.values():
            if policy.http is None:
                continue
            for rule in _bindings(policy.http):
                if not rule.body:
                    continue
                verb, path = _verb_and_path(rule)
                request = policy.descriptor.input_type
                _add_message(request, messages)
                routes.append(
                    {
                        "method": verb,
                        "pattern": lua_pattern(path),
                        "message": request.full_name,
                        "body": rule.body,
                    }
                )
    return routes, messages


def _lua(value: Any) -> str:
    """A Lua literal of a JSON-like Python value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value)
        if not text.isascii() or "\\u" in text:
            raise ValueError(f"cannot write {value!r} as a Lua string")
        return text
    if isinstance(value, list):
        return "{" + ", ".join(_lua(item) for item in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Lua form for {value!r}")


def render(services: Iterable[contracts.ServiceContract]) -> dict[str, Any]:
    """The Lua filter's typed_config."""
    routes, messages = schema(services)
    tables = (
        "-- Generated from proto/ by shopmesh/envoy/json_guard.py.\n"
        f"ROUTES = {_lua(routes)}\n"
        f"MESSAGES = {_lua(messages)}\n\n"
    )
    return lua_guard.render("json_guard", tables)
