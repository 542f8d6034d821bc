"""Request validation that reports every problem of a request at once.

Handlers collect violations in a `Violations` and call `check()`, which raises
InvalidArgument with one BadRequest field violation per problem, each naming
the field path ("items[1].quantity"), so a client fixes everything in one go.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

from google.protobuf import descriptor, message
from google.type import money_pb2

from services.runtime.errors import FieldViolation, InvalidArgument
from services.runtime.money import NANOS_PER_UNIT, SUPPORTED_CURRENCIES, to_nanos

__all__ = ["MAX_ID_LENGTH", "MAX_PAYMENT_TOKEN_LENGTH", "Violations"]

T = TypeVar("T")
MAX_ID_LENGTH = 128
MAX_PAYMENT_TOKEN_LENGTH = 256
_CURRENCY = re.compile(r"[A-Z]{3}")
# 13 to 19 digits, maybe grouped by spaces or dashes: a primary account number.
_CARD_NUMBER = re.compile(r"(?:\d[ -]?){12,18}\d")


class Violations:
    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def check(self) -> None:
        """Raise InvalidArgument naming every violation found so far, if any."""
        if self.items:
            raise InvalidArgument(self.items)

    def required(self, value: str, field: str, *, max_length: int = MAX_ID_LENGTH) -> bool:
        """A non-blank string of at most `max_length` characters."""
        if not value or not value.strip():
            self.add(field, "is required")
            return False
        return self.max_length(value, field, max_length)

    def max_length(self, value: str, field: str, limit: int) -> bool:
        if len(value) > limit:
            self.add(field, f"must be at most {limit} characters")
            return False
        return True

    def payment_token(self, token: str, field: str) -> bool:
        """A gateway's card or wallet token: required, bounded, and never a card number.

        Every service that takes a payment method checks it with this, so a card number
        is refused before anything is written, stored or sent on.
        """
        if not self.required(token, field, max_length=MAX_PAYMENT_TOKEN_LENGTH):
            return False
        if _CARD_NUMBER.fullmatch(token.strip()):
            # Never echo it back, log it or store it: say what it looks like, not what it is.
            self.add(field, "looks like a card number; send the gateway's token instead")
            return False
        return True

    def in_range(self, value: int, field: str, low: int, high: int) -> bool:
        if not low <= value <= high:
            self.add(field, f"must be between {low} and {high}, not {value}")
            return False
        return True

    def count(self, values: Sequence, field: str, low: int, high: int) -> bool:
        """A repeated field with `low` to `high` entries."""
        if len(values) < low:
            self.add(field, "is required" if low == 1 else f"needs at least {low} entries")
            return False
        if len(values) > high:
            self.add(field, f"must have at most {high} entries, not {len(values)}")
            return False
        return True

    def distinct(
        self, values: Iterable[T], field: str, key: Callable[[T], Hashable] = lambda v: v
    ) -> bool:
        """No two entries share a key; each repeat is named by its index."""
        seen: set[Hashable] = set()
        ok = True
        for index, value in enumerate(values):
            identity = key(value)
            if identity in seen:
                self.add(f"{field}[{index}]", f"repeats {identity!r}")
                ok = False
            seen.add(identity)
        return ok

    def currency(self, code: str, field: str) -> bool:
        """An ISO 4217 code (three capital letters) that the shop supports."""
        if not _CURRENCY.fullmatch(code or ""):
            self.add(field, "must be an ISO 4217 currency code such as USD")
            return False
        if code not in SUPPORTED_CURRENCIES:
            self.add(field, f"currency {code} is not supported; use {sorted(SUPPORTED_CURRENCIES)}")
            return False
        return True

    def money(self, money: money_pb2.Money, field: str, *, positive: bool = False) -> bool:
        """A well-formed amount: supported currency, nanos in range and sharing the units' sign."""
        ok = self.currency(money.currency_code, f"{field}.currency_code")
        if not -NANOS_PER_UNIT < money.nanos < NANOS_PER_UNIT:
            self.add(f"{field}.nanos", "must be between -999,999,999 and 999,999,999")
            ok = False
        elif (money.units > 0 and money.nanos < 0) or (money.units < 0 and money.nanos > 0):
            self.add(f"{field}.nanos", "must have the same sign as units")
            ok = False
        elif positive and to_nanos(money) <= 0:
            self.add(field, "must be positive")
            ok = False
        return ok

    def well_formed(self, request: message.Message, prefix: str = "") -> bool:
        """What protobuf does not check itself, in `request` and its nested messages: every
        enum field holds a value its enum defines (proto3 keeps whatever number a client
        sends, a wallet provider of 99), and no string holds U+0000 (valid UTF-8, yet
        PostgreSQL cannot store it). No handler should have to think of either."""
        ok = True
        for field, value in request.ListFields():
            path = f"{prefix}{field.name}"
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                entry = field.message_type.fields_by_name["value"]
                entries = [(f"{path}[{key!r}]", item) for key, item in value.items()]
                ok &= self._well_formed(entry, entries)
                key_field = field.message_type.fields_by_name["key"]
                ok &= self._well_formed(key_field, [(f"{path} key", key) for key in value])
            elif field.is_repeated:
                ok &= self._well_formed(field, [(f"{path}[{i}]", v) for i, v in enumerate(value)])
            else:
                ok &= self._well_formed(field, [(path, value)])
        return ok

    def _well_formed(
        self, field: descriptor.FieldDescriptor, values: Iterable[tuple[str, object]]
    ) -> bool:
        ok = True
        for path, value in values:
            if field.enum_type is not None and value not in field.enum_type.values_by_number:
                # Value 0 is each enum's UNSPECIFIED: defined, never a choice.
                names = ", ".join(v.name for v in field.enum_type.values if v.number)
                self.add(path, f"{value} is not a {field.enum_type.name}; use one of {names}")
                ok = False
            elif isinstance(value, str) and "\x00" in value:
                self.add(path, "must not contain NUL (U+0000)")
                ok = False
            elif isinstance(value, message.Message):
                ok &= self.well_formed(value, f"{path}.")
        return ok

    def page_size(
        self, value: int, field: str = "page_size", *, default: int = 20, maximum: int = 100
    ) -> int:
        """The page size to use: 0 means `default`, above `maximum` is clamped, negative fails."""
        if value < 0:
            self.add(field, "must not be negative")
            return default
        if value == 0:
            return default
        return min(value, maximum)
