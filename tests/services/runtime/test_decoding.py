"""A request that is not a valid message of its type is INVALID_ARGUMENT naming the field.

Sent as raw bytes over a real channel, as a gRPC client in another language (or
the edge's transcoder, copying a percent-encoded %FF into a string field) would:
protobuf refuses invalid UTF-8 in a string field while grpc parses the request,
before any handler runs. Without services/runtime/decoding.py that was UNKNOWN
with the DecodeError's text.
"""

import grpc
import pytest

from mesh import contracts
from services.runtime.decoding import invalid_utf8_fields
from services.runtime.testing import connect, error_details, serving
from services.runtime.validation import Violations

from .toy import TOY

catalog = contracts.service("catalog")
order = contracts.service("order")
GET_PRODUCT = catalog.methods["GetProduct"].path


def _string(number: int, value: bytes) -> bytes:
    """A length-delimited field on the wire (tag, length, bytes); short values only."""
    assert len(value) < 128
    return bytes([number << 3 | 2, len(value)]) + value


@pytest.fixture
async def send(databases):
    """Sends raw bytes as a GetProduct request to a real server of the catalog contract."""
    async with serving("catalog", databases, service=TOY) as server, connect(server) as channel:
        call = channel.unary_unary(GET_PRODUCT)  # no serializers: bytes in, bytes out

        async def raw(request: bytes) -> grpc.aio.AioRpcError:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(request, timeout=5)
            return caught.value

        yield raw


async def test_invalid_utf8_in_a_string_field_is_invalid_argument_naming_it(send):
    error = await send(_string(1, b"kitchen-\xff"))
    details = error_details(error)
    assert details.code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.field_violations == {"id": "is not valid UTF-8"}
    assert "DecodeError" not in details.message and "Unexpected" not in details.message


@pytest.mark.parametrize(
    "garbage",
    # a varint past the end, a field shorter than its length, a tag without a value
    [b"\xff\xff\xff", b"\x0a\x05ab", b"\x08"],
)
async def test_bytes_that_are_no_message_are_invalid_argument(send, garbage):
    details = error_details(await send(garbage))
    assert details.code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.message == "the request is not a valid shop.catalog.v1.GetProductRequest"


async def test_a_valid_request_still_reaches_the_handler(send):
    error = await send(_string(1, b"missing"))  # the toy's NOT_FOUND
    assert error.code() is grpc.StatusCode.NOT_FOUND


def test_invalid_utf8_is_found_in_nested_and_repeated_fields():
    items = _string(1, b"ok") + bytes([2 << 3, 1])  # product_id "ok", quantity 1
    bad_item = _string(1, b"\xc3\x28")  # an invalid two-byte sequence
    address = _string(9, b"1 Main St") + _string(9, b"\xed\xa0\x80")  # a UTF-16 surrogate
    request = (
        _string(2, items)
        + _string(2, bad_item)
        + _string(3, address)
        + _string(5, b"\xe2\x82")  # truncated
    )
    kind = order.messages.PlaceOrderRequest.DESCRIPTOR
    assert invalid_utf8_fields(kind, request) == [
        "items[1].product_id",
        "shipping_address.address_lines[1]",
        "request_id",
    ]
    assert invalid_utf8_fields(kind, b"\x12\x05ab") is None  # a field longer than the bytes


def test_an_undefined_enum_number_is_named_by_its_field():
    request = order.messages.PlaceOrderRequest()
    request.payment_method.wallet.provider = 99
    violations = Violations()
    assert not violations.well_formed(request)
    (violation,) = violations.items
    assert violation.field == "payment_method.wallet.provider"
    assert "99 is not a WalletProvider" in violation.description
    assert "WALLET_PROVIDER_PAYPAL" in violation.description
    request.payment_method.wallet.provider = 3
    assert Violations().well_formed(request)


def test_a_nul_in_any_string_is_named_by_its_field():
    # Valid UTF-8, but PostgreSQL refuses to store it: that was INTERNAL from the store.
    request = order.messages.PlaceOrderRequest(request_id="a\x00b")
    request.shipping_address.address_lines.extend(["1 Main St", "\x00"])
    violations = Violations()
    assert not violations.well_formed(request)
    assert {v.field: v.description for v in violations.items} == {
        "request_id": "must not contain NUL (U+0000)",
        "shipping_address.address_lines[1]": "must not contain NUL (U+0000)",
    }
