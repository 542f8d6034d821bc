"""A request that is not a valid message of its type is INVALID_ARGUMENT naming the field.

grpc parses a request before any interceptor or handler sees it. protobuf refuses
a string field that is not valid UTF-8 (as it must: proto3 strings are UTF-8) and
any malformed message with DecodeError, which grpc reports as UNKNOWN with the
exception's own text: through the edge, an HTTP 500 saying "Unexpected <class
...DecodeError>". The edge cannot prevent it, since gRPC clients reach the
services without any transcoding and a REST client's percent-encoded path or query
parameter (%FF) is copied into a string field byte for byte, so the check belongs
here, where the message is parsed. `RequestDecoding` wraps each method's
deserializer: bytes that do not parse become an `Undecodable`, which the handler
chain refuses with a BadRequest violation for each string field that is not UTF-8
(found by walking the wire format with the method's descriptor). A request that
parses is held to what protobuf does not enforce itself (validation.py's
`well_formed`): every enum value defined, no NUL in a string.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor, message

from services.runtime.errors import InvalidArgument
from services.runtime.unary import Behavior, UnaryWrappingInterceptor
from services.runtime.validation import Violations

__all__ = ["RequestDecoding", "Undecodable", "invalid_utf8_fields"]

_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def _walk(kind: descriptor.Descriptor, data: bytes, prefix: str, found: list[str]) -> None:
    seen: dict[int, int] = {}
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            _, position = _varint(data, position)
            continue
        if wire_type in (_FIXED64, _FIXED32):
            position += 8 if wire_type == _FIXED64 else 4
            continue
        if wire_type != _LENGTH_DELIMITED:
            raise ValueError(f"wire type {wire_type}")
        length, position = _varint(data, position)
        value, position = data[position : position + length], position + length
        if position > len(data):
            raise ValueError("truncated field")
        field = kind.fields_by_number.get(number)
        if field is None:
            continue  # an unknown field: protobuf keeps its bytes as they are
        index = seen[number] = seen.get(number, -1) + 1
        path = prefix + field.name + (f"[{index}]" if field.is_repeated else "")
        if field.type == descriptor.FieldDescriptor.TYPE_STRING:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                found.append(path)
        elif field.type == descriptor.FieldDescriptor.TYPE_MESSAGE:
            _walk(field.message_type, value, f"{path}.", found)


def invalid_utf8_fields(kind: descriptor.Descriptor, data: bytes) -> list[str] | None:
    """Paths ("items[1].product_id") of the string fields in `data`, a serialized `kind`,
    that are not UTF-8; None if `data` is not protobuf's wire format at all."""
    found: list[str] = []
    try:
        _walk(kind, data, "", found)
    except ValueError:
        return None
    return found


class Undecodable:
    """A request's bytes that protobuf would not parse as the method's request message."""

    def __init__(self, kind: descriptor.Descriptor, data: bytes) -> None:
        self.kind = kind
        self.data = data

    def error(self) -> InvalidArgument:
        fields = invalid_utf8_fields(self.kind, self.data)
        if not fields:
            return InvalidArgument([], f"the request is not a valid {self.kind.full_name}")
        violations = Violations()
        for path in fields:
            violations.add(path, "is not valid UTF-8")
        return InvalidArgument(violations.items)


class RequestDecoding(UnaryWrappingInterceptor):
    """See the module doc. Innermost in the chain: errors.py maps what it raises."""

    def request_deserializer(self, deserializer: Callable[[bytes], Any] | None):
        # The generated handlers pass the request class's FromString.
        kind = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
        if deserializer is None or not isinstance(kind, descriptor.Descriptor):
            return deserializer

        def deserialize(data: bytes) -> Any:
            try:
                return deserializer(data)
            except message.DecodeError:
                return Undecodable(kind, data)

        return deserialize

    def wrap(self, behavior: Behavior, method: str) -> Behavior:
        async def decoded(request, context):
            if isinstance(request, Undecodable):
                raise request.error()
            if isinstance(request, message.Message):
                violations = Violations()
                violations.well_formed(request)
                violations.check()
            return await behavior(request, context)

        return decoded
