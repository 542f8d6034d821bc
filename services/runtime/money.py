"""google.type.Money arithmetic in integer nanos (never floats)."""

from __future__ import annotations

from google.type import money_pb2

__all__ = ["NANOS_PER_UNIT", "SUPPORTED_CURRENCIES", "from_nanos", "to_nanos"]

NANOS_PER_UNIT = 1_000_000_000
# The currencies the shop prices and charges in.
SUPPORTED_CURRENCIES = frozenset({"USD", "EUR", "GBP", "CHF", "CAD", "JPY"})


def to_nanos(money: money_pb2.Money) -> int:
    return money.units * NANOS_PER_UNIT + money.nanos


def from_nanos(currency_code: str, nanos: int) -> money_pb2.Money:
    # units and nanos must share a sign: int division would floor -1.5 to (-2, +0.5).
    sign = -1 if nanos < 0 else 1
    units, rest = divmod(abs(nanos), NANOS_PER_UNIT)
    return money_pb2.Money(currency_code=currency_code, units=sign * units, nanos=sign * rest)
