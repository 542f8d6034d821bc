"""The order service's own knobs, read from the server's environment.

SHOPMESH_ORDER_LEASE_SECONDS     how long a saga stays claimed by a process that stops
                                 renewing it (crashed) before another takes it over (10)
SHOPMESH_ORDER_RECOVERY_SECONDS  how often unfinished sagas nobody runs are resumed (2)
SHOPMESH_ORDER_UNKNOWN_CHARGE_SECONDS
                                 how long after checkout a failed order keeps asking payment
                                 about a charge whose outcome it never learned, before it
                                 ends FAILED and flags the charge for reconciliation (300)
SHOPMESH_ORDER_RESERVATION_TTL_SECONDS
                                 how long inventory holds a checkout's stock before it
                                 expires (900; a saga charges only while it is held)
SHOPMESH_ORDER_PAUSE_AFTER       test hook, see faults.py
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.order.faults import PauseAfter

__all__ = ["OrderSettings"]


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name) or str(default)
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive")
    return value


@dataclass(frozen=True)
class OrderSettings:
    lease_seconds: float = 10.0
    recovery_seconds: float = 2.0
    unknown_charge_seconds: float = 300.0
    reservation_ttl_seconds: float = 900.0
    pause_after: PauseAfter | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OrderSettings:
        return cls(
            lease_seconds=_positive(env, "SHOPMESH_ORDER_LEASE_SECONDS", cls.lease_seconds),
            recovery_seconds=_positive(
                env, "SHOPMESH_ORDER_RECOVERY_SECONDS", cls.recovery_seconds
            ),
            unknown_charge_seconds=_positive(
                env, "SHOPMESH_ORDER_UNKNOWN_CHARGE_SECONDS", cls.unknown_charge_seconds
            ),
            reservation_ttl_seconds=_positive(
                env, "SHOPMESH_ORDER_RESERVATION_TTL_SECONDS", cls.reservation_ttl_seconds
            ),
            pause_after=PauseAfter.from_env(env),
        )
