"""The payment gateway the service charges through: an interface and a simulated gateway.

SimulatedGateway behaves like a real card gateway, deterministically by token:

    token                            outcome
    tok_visa                         approved, visa, last4 4242
    tok_mastercard                   approved, mastercard, last4 4444
    tok_amex                         approved, amex, last4 8431
    tok_decline_insufficient_funds   declined INSUFFICIENT_FUNDS (visa 9995)
    tok_decline_expired              declined CARD_EXPIRED (visa 0069)
    tok_decline_fraud                declined SUSPECTED_FRAUD (visa 0019)
    tok_decline_do_not_honor         declined DO_NOT_HONOR (visa 0002)
    tok_decline_currency             declined CURRENCY_NOT_SUPPORTED (visa 0051)
    tok_timeout                      never answers: GatewayTimeout after the gateway timeout
    any other card token             declined INVALID_TOKEN
    any wallet token                 approved (brand = the wallet), except the tok_decline_*
                                     and tok_timeout tokens above, which act the same way

Like real gateways it deduplicates on an idempotency key: a repeated key
returns the recorded result and never captures twice, and a key reused for a
different charge fails with IdempotencyKeyReused. Its records live in a
PostgreSQL database of their own (SHOPMESH_GATEWAY_DATABASE_URL, apart from the
payment service's), shared by all payment replicas, so a retry landing on
another replica still captures once.

Chaos knobs (environment): SHOPMESH_GATEWAY_LATENCY_MS (added to every call),
SHOPMESH_GATEWAY_ERROR_RATE (0..1: share of calls that fail; half of them
fail *after* capturing, as a lost response would), SHOPMESH_GATEWAY_SEED (the
RNG seed, for repeatable runs), SHOPMESH_GATEWAY_TIMEOUT_MS (how long
tok_timeout hangs before GatewayTimeout; default 1000).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Protocol

from psycopg.types.json import Jsonb

from services.runtime import Database
from services.runtime.migrations import Migrations
from services.runtime.postgres import Connection

__all__ = [
    "MIGRATIONS",
    "GatewayError",
    "GatewayResult",
    "GatewayTimeout",
    "IdempotencyKeyReused",
    "PaymentGateway",
    "SimulatedGateway",
]

# Values of shop.payment.v1.DeclineReason.
INSUFFICIENT_FUNDS, CARD_EXPIRED, SUSPECTED_FRAUD, INVALID_TOKEN = 1, 2, 3, 4
DO_NOT_HONOR, CURRENCY_NOT_SUPPORTED = 5, 6

# token -> (decline reason or 0 for approved, brand, last4)
CARD_TOKENS: dict[str, tuple[int, str, str]] = {
    "tok_visa": (0, "visa", "4242"),
    "tok_mastercard": (0, "mastercard", "4444"),
    "tok_amex": (0, "amex", "8431"),
    "tok_decline_insufficient_funds": (INSUFFICIENT_FUNDS, "visa", "9995"),
    "tok_decline_expired": (CARD_EXPIRED, "visa", "0069"),
    "tok_decline_fraud": (SUSPECTED_FRAUD, "visa", "0019"),
    "tok_decline_do_not_honor": (DO_NOT_HONOR, "visa", "0002"),
    "tok_decline_currency": (CURRENCY_NOT_SUPPORTED, "visa", "0051"),
}
TIMEOUT_TOKEN = "tok_timeout"

MIGRATIONS = Migrations.of_package("services.payment", "gateway_migrations")


class GatewayError(Exception):
    """The gateway did not give an answer; the caller may retry with the same key."""


class GatewayTimeout(GatewayError):
    pass


class IdempotencyKeyReused(Exception):
    """The key was already used for a different operation."""


@dataclass(frozen=True)
class GatewayResult:
    reference: str  # the gateway's id of the charge or refund
    approved: bool
    decline_reason: int = 0
    brand: str = ""
    last4: str = ""


class PaymentGateway(Protocol):
    async def charge(
        self,
        idempotency_key: str,
        fingerprint: str,
        *,
        amount_nanos: int,
        currency: str,
        token: str,
        wallet: str | None,
    ) -> GatewayResult:
        """Capture `amount_nanos` of `currency`; raises GatewayError when there is no answer."""

    async def refund(
        self, idempotency_key: str, fingerprint: str, *, charge_reference: str, amount_nanos: int
    ) -> GatewayResult:
        """Give back part of a capture; raises GatewayError when there is no answer."""

    async def close(self) -> None: ...


class SimulatedGateway:
    def __init__(
        self,
        database: Database,
        *,
        latency: float = 0.0,
        error_rate: float = 0.0,
        timeout: float = 1.0,
        seed: int | None = None,
    ) -> None:
        if not 0 <= error_rate <= 1:
            raise ValueError("SHOPMESH_GATEWAY_ERROR_RATE must be between 0 and 1")
        self._database = database
        self._latency = latency
        self._error_rate = error_rate
        self._timeout = timeout
        self._random = random.Random(seed)

    @classmethod
    async def open(cls, env: Mapping[str, str]) -> SimulatedGateway:
        seed = env.get("SHOPMESH_GATEWAY_SEED")
        url = env.get("SHOPMESH_GATEWAY_DATABASE_URL", "")
        return cls(
            await Database.open(url, MIGRATIONS, name="payment-gateway"),
            latency=float(env.get("SHOPMESH_GATEWAY_LATENCY_MS") or 0) / 1000,
            error_rate=float(env.get("SHOPMESH_GATEWAY_ERROR_RATE") or 0),
            timeout=float(env.get("SHOPMESH_GATEWAY_TIMEOUT_MS") or 1000) / 1000,
            seed=int(seed) if seed else None,
        )

    async def close(self) -> None:
        await self._database.close()

    async def charge(self, idempotency_key, fingerprint, *, amount_nanos, currency, token, wallet):
        if token == TIMEOUT_TOKEN:
            await asyncio.sleep(self._timeout)
            raise GatewayTimeout("the gateway did not answer in time")

        def decide() -> GatewayResult:
            reference = f"ch_{uuid.uuid4().hex[:24]}"
            if token in CARD_TOKENS:
                decline, brand, last4 = CARD_TOKENS[token]
                if wallet and not decline:
                    return GatewayResult(reference, True, 0, wallet, "")
                return GatewayResult(reference, not decline, decline, wallet or brand, last4)
            if wallet:
                return GatewayResult(reference, True, 0, wallet, "")
            return GatewayResult(reference, False, INVALID_TOKEN, "unknown", "")

        return await self._operation(idempotency_key, fingerprint, decide)

    async def refund(self, idempotency_key, fingerprint, *, charge_reference, amount_nanos):
        def decide() -> GatewayResult:
            return GatewayResult(f"re_{uuid.uuid4().hex[:24]}", True)

        return await self._operation(idempotency_key, fingerprint, decide)

    async def _operation(self, key: str, fingerprint: str, decide) -> GatewayResult:
        if self._latency:
            await asyncio.sleep(self._latency)
        fault = self._random.random() < self._error_rate
        lose_response = fault and self._random.random() < 0.5
        if fault and not lose_response:
            raise GatewayError("the gateway is unavailable")
        result = await self._database.write(_record_once, key, fingerprint, decide)
        if lose_response:  # it did the work, but the answer never arrives
            raise GatewayTimeout("the gateway timed out after accepting the request")
        return result


async def _record_once(connection: Connection, key: str, fingerprint: str, decide):
    cursor = await connection.execute(
        "SELECT fingerprint, result FROM gateway_operations WHERE idempotency_key = %s", (key,)
    )
    row = await cursor.fetchone()
    if row is not None:
        if row[0] != fingerprint:
            raise IdempotencyKeyReused(key)
        return GatewayResult(**row[1])
    result = decide()
    await connection.execute(
        "INSERT INTO gateway_operations VALUES (%s, %s, %s, %s)",
        (key, fingerprint, Jsonb(asdict(result)), time.time_ns() // 1000),
    )
    return result
