"""Validation helpers collect every violation; page tokens are opaque and checked."""

import base64

import pytest
from google.type import money_pb2

from services.runtime.errors import InvalidArgument
from services.runtime.money import from_nanos, to_nanos
from services.runtime.paging import decode_offset, encode_page_token
from services.runtime.validation import Violations


def _money(currency="USD", units=0, nanos=0):
    return money_pb2.Money(currency_code=currency, units=units, nanos=nanos)


def test_every_violation_of_a_request_is_reported_at_once():
    v = Violations()
    v.required("", "order_id")
    v.required("x" * 200, "request_id")
    v.in_range(0, "items[0].quantity", 1, 1000)
    v.count([], "items", 1, 100)
    with pytest.raises(InvalidArgument) as caught:
        v.check()
    assert [f.field for f in caught.value.violations] == [
        "order_id",
        "request_id",
        "items[0].quantity",
        "items",
    ]


def test_no_violation_means_check_passes():
    v = Violations()
    assert v.required("o-1", "order_id") and v.in_range(5, "q", 1, 10)
    v.check()


@pytest.mark.parametrize(
    ("money", "field"),
    [
        (_money("usd", 1), "amount.currency_code"),
        (_money("US", 1), "amount.currency_code"),
        (_money("XAU", 1), "amount.currency_code"),
        (_money("USD", 1, -5), "amount.nanos"),
        (_money("USD", -1, 5), "amount.nanos"),
        (_money("USD", 0, 1_000_000_000), "amount.nanos"),
        (_money("USD", 0, 0), "amount"),
        (_money("USD", -2, 0), "amount"),
    ],
)
def test_bad_money_is_named_by_its_field(money, field):
    v = Violations()
    assert not v.money(money, "amount", positive=True)
    assert [f.field for f in v.items] == [field]


def test_good_money_passes():
    v = Violations()
    assert v.money(_money("EUR", 12, 500_000_000), "amount", positive=True)
    assert v.money(_money("GBP", -1, -5), "amount")  # negative is fine when not asked positive


def test_money_nanos_round_trip_keeps_signs_together():
    assert to_nanos(_money("USD", 3, 250_000_000)) == 3_250_000_000
    assert from_nanos("USD", -1_500_000_000) == _money("USD", -1, -500_000_000)


@pytest.mark.parametrize(("given", "used"), [(0, 20), (7, 7), (100, 100), (5000, 100)])
def test_page_size_default_and_clamp(given, used):
    v = Violations()
    assert v.page_size(given) == used and not v


def test_negative_page_size_is_rejected():
    v = Violations()
    v.page_size(-1)
    assert [f.field for f in v.items] == ["page_size"]


def test_distinct_names_each_repeat():
    v = Violations()
    v.distinct(["a", "b", "a", "a"], "skus")
    assert [f.field for f in v.items] == ["skus[2]", "skus[3]"]


def test_page_token_round_trips_for_the_same_filter():
    token = encode_page_token({"category": "kitchen"}, 40)
    v = Violations()
    assert decode_offset(token, {"category": "kitchen"}, v) == 40 and not v
    assert decode_offset("", {"category": "kitchen"}, v) == 0 and not v


@pytest.mark.parametrize(
    "token",
    [
        "not a token!",
        "e30",  # "{}"
        base64.urlsafe_b64encode(b'{"v":1,"f":"x","p":-1}').decode(),
        encode_page_token({"category": "kitchen"}, "abc"),
        "A" * 600,
    ],
)
def test_malformed_page_tokens_name_the_field(token):
    v = Violations()
    decode_offset(token, {"category": "kitchen"}, v)
    assert [f.field for f in v.items] == ["page_token"]


def test_page_token_for_another_filter_is_rejected():
    token = encode_page_token({"category": "kitchen"}, 20)
    v = Violations()
    decode_offset(token, {"category": "garden"}, v)
    assert "different filter" in v.items[0].description
