"""hypothesis strategies for any request message of the contracts, from its descriptor,
and for the bytes of a mutated one.

Generated messages set any subset of fields with values from the whole range of
their type (strings of any code points and lengths, every integer width, enum
numbers the enum does not define, nested messages, lists, ...), or every field
with plausible values: what the shop knows for a field of that name (its
products' ids and SKUs, test card tokens, currencies, UUIDs), else short text,
small numbers and defined enum values, so that calls get past validation into
the services' logic too. Mutated messages
are a generated message's wire bytes with bytes flipped, cut, inserted or
repeated, or a string field's bytes made invalid UTF-8: what a broken client or
a bad network sends.
"""

from __future__ import annotations

import functools
import string
import uuid

from google.protobuf import descriptor, message, message_factory
from google.protobuf.descriptor import FieldDescriptor as Field
from hypothesis import strategies as st

from services.seed import SEED_PRODUCTS

__all__ = ["mutated_bytes", "requests_of"]

MAX_DEPTH = 4
KNOWN_STRINGS = (
    "",
    " ",
    *(product.id for product in SEED_PRODUCTS[:5]),
    *(product.sku for product in SEED_PRODUCTS[:5]),
    "tok_visa",
    "tok_decline_insufficient_funds",
    "USD",
    "EUR",
    "US",
    "4242 4242 4242 4242",
    "a" * 300,
)
# Values that pass validation, by field name (any message).
REALISTIC = {
    "product_id": st.sampled_from([product.id for product in SEED_PRODUCTS]),
    "sku": st.sampled_from([product.sku for product in SEED_PRODUCTS]),
    "skus": st.sampled_from([product.sku for product in SEED_PRODUCTS]),
    "ids": st.sampled_from([product.id for product in SEED_PRODUCTS]),
    "currency_code": st.sampled_from(["USD", "EUR"]),
    "region_code": st.just("US"),
    "token": st.sampled_from(["tok_visa", "tok_amex", "tok_decline_expired", "wallet-tok-1"]),
    "quantity": st.integers(1, 5),
    "units": st.integers(1, 200),
    "nanos": st.just(0),
    "page_size": st.integers(0, 10),
    "customer_id": st.just(""),  # the caller
    "address_lines": st.just("1 Main St"),
    "recipients": st.just("Ada Lovelace"),
    "revision": st.just(0),
    **{
        name: st.uuids().map(str)
        for name in ("id", "order_id", "payment_id", "reservation_id", "request_id")
    },
}
_INTEGERS = {
    Field.TYPE_INT32: (-(2**31), 2**31 - 1),
    Field.TYPE_SINT32: (-(2**31), 2**31 - 1),
    Field.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    Field.TYPE_INT64: (-(2**63), 2**63 - 1),
    Field.TYPE_SINT64: (-(2**63), 2**63 - 1),
    Field.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    Field.TYPE_UINT32: (0, 2**32 - 1),
    Field.TYPE_FIXED32: (0, 2**32 - 1),
    Field.TYPE_UINT64: (0, 2**64 - 1),
    Field.TYPE_FIXED64: (0, 2**64 - 1),
}


def _strings() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(KNOWN_STRINGS),
        st.uuids().map(str),
        st.text(max_size=40),
        st.text(min_size=100, max_size=2_000),
    )


def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = st.sampled_from([low, high, 0, 1, -1 if low < 0 else 2, 100, 101])
    small = st.integers(max(low, -5), 120)
    return st.one_of(small, edges, st.integers(low, high))


def _plausible(field: Field) -> st.SearchStrategy | None:
    if field.name in REALISTIC:
        return REALISTIC[field.name]
    if field.type == Field.TYPE_STRING:
        return st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=12)
    if field.type in _INTEGERS:
        return st.integers(max(0, _INTEGERS[field.type][0]), 5)
    if field.type == Field.TYPE_ENUM:
        return st.sampled_from([v.number for v in field.enum_type.values if v.number] or [0])
    return None


def _scalar(field: Field, depth: int, complete: bool = False) -> st.SearchStrategy:
    if complete and (plausible := _plausible(field)) is not None:
        return plausible
    if field.type == Field.TYPE_STRING:
        return _strings()
    if field.type in _INTEGERS:
        return _integers(*_INTEGERS[field.type])
    if field.type == Field.TYPE_BOOL:
        return st.booleans()
    if field.type == Field.TYPE_DOUBLE:
        return st.floats()
    if field.type == Field.TYPE_FLOAT:
        return st.floats(width=32)
    if field.type == Field.TYPE_BYTES:
        return st.binary(max_size=64)
    if field.type == Field.TYPE_ENUM:
        defined = [value.number for value in field.enum_type.values]
        return st.one_of(st.sampled_from(defined), st.integers(-3, 1_000))
    assert field.type == Field.TYPE_MESSAGE, field.type
    return _messages(field.message_type, depth + 1, complete)


def _assign(target: message.Message, field: Field, value) -> None:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        getattr(target, field.name).update(value)
    elif field.is_repeated:
        getattr(target, field.name).extend(value)
    elif field.type == Field.TYPE_MESSAGE:
        getattr(target, field.name).CopyFrom(value)
    else:
        setattr(target, field.name, value)


def _field(field: Field, depth: int, complete: bool) -> st.SearchStrategy:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key = _scalar(field.message_type.fields_by_name["key"], depth)
        value = _scalar(field.message_type.fields_by_name["value"], depth, complete)
        return st.dictionaries(key, value, max_size=3)
    if field.is_repeated:
        return st.lists(_scalar(field, depth, complete), min_size=int(complete), max_size=4)
    return _scalar(field, depth, complete)


@functools.cache
def _messages(
    kind: descriptor.Descriptor, depth: int = 0, complete: bool = False
) -> st.SearchStrategy:
    """Any subset of the fields, or (complete) every one of them."""
    cls = message_factory.GetMessageClass(kind)
    if depth > MAX_DEPTH:
        return st.just(cls())
    fields = {field.name: _field(field, depth, complete) for field in kind.fields}

    def build(values: dict) -> message.Message:
        built = cls()
        for name, value in values.items():
            _assign(built, kind.fields_by_name[name], value)
        return built

    if complete:
        return st.fixed_dictionaries(fields).map(build)
    return st.fixed_dictionaries({}, optional=fields).map(build)


def requests_of(kind: descriptor.Descriptor) -> st.SearchStrategy[message.Message]:
    """Any message of type `kind`; a fresh UUID request_id on most of those that have one
    (so what a call wrote can be told apart from what any other call did)."""
    generated = _messages(kind) | _messages(kind, complete=True)
    if "request_id" not in kind.fields_by_name:
        return generated

    def with_id(built: message.Message, fresh: bool) -> message.Message:
        if fresh:
            built.request_id = str(uuid.uuid4())
        return built

    return st.builds(with_id, generated, st.integers(0, 4).map(bool))


_INVALID_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80")


@st.composite
def mutated_bytes(draw, kind: descriptor.Descriptor) -> tuple[bytes, message.Message]:
    """The wire bytes of a generated `kind`, mutated one to four times; and the message
    they were before."""
    original = draw(requests_of(kind))
    data = bytearray(original.SerializeToString())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        how = draw(
            st.sampled_from(["flip", "cut", "insert", "repeat", "invalid UTF-8", "truncate"])
        )
        if how == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif how == "cut":
            del data[at : at + draw(st.integers(1, 8))]
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif how == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 16))]
        elif how == "invalid UTF-8":
            data[at:at] = draw(st.sampled_from(_INVALID_UTF8))
        elif how == "truncate":
            del data[at:]
    return bytes(data), original
