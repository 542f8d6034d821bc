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
different charge fails with IdempotencyKeyReused. A key can be looked up
without side effects (`lookup`), and closed (`close`): a closed key never
captures, so a charge whose answer was lost can be settled for good (either
it had captured, and the record says so, or it never will). Its records live in a
PostgreSQL database of their own (SHOPMESH_GATEWAY_DATABASE_URL, apart from the
payment service's), shared by all payment replicas, so a retry landing on
another replica still captures once.

Chaos knobs (environment): SHOPMESH_GATEWAY_LATENCY_MS (added to every call),
SHOPMESH_GATEWAY_ERROR_RATE (0..1: share of calls that fail; half of the
charges and refunds among them fail *after* doing the work, as a lost response
would), SHOPMESH_GATEWAY_SEED (the RNG seed, for repeatable runs),
SHOPMESH_GATEWAY_TIMEOUT_MS (how long tok_timeout hangs before GatewayTimeout;
default 1000); and two deterministic ones for tests: SHOPMESH_GATEWAY_DOWN=1
(every call fails before the gateway does anything; `lookups`: only lookups and
key closings do) and
SHOPMESH_GATEWAY_LOSE_ANSWERS=charge,refund (operations of those kinds are done,
then time out, as if their answer was lost).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Protocol

from psycopg.types.json import Jsonb

from services.runtime import Database
from services.runtime.migrations import Migrations
from services.runtime.postgres import Connection, fetch_one

__all__ = [
    "MIGRATIONS",
    "GatewayError",
    "GatewayRecord",
    "GatewayResult",
    "GatewayTimeout",
    "IdempotencyKeyReused",
    "KeyClosed",
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
    """The gateway refused the call before doing anything; retrying is safe."""


class GatewayTimeout(GatewayError):
    """No answer in time: the operation may or may not have been done."""


class IdempotencyKeyReused(Exception):
    """The key was already used for a different operation."""


class KeyClosed(Exception):
    """The key was closed: the gateway did nothing under it, and never will."""


@dataclass(frozen=True)
class GatewayResult:
    reference: str  # the gateway's id of the charge or refund
    approved: bool
    decline_reason: int = 0
    brand: str = ""
    last4: str = ""


@dataclass(frozen=True)
class GatewayRecord:
    """What the gateway's ledger holds under one key."""

    kind: str  # "charge", "refund" or "closed"
    result: GatewayResult | None  # None for a closed key
    amount_nanos: int
    currency: str
    metadata: dict[str, str]
    fingerprint: str  # of the call that did it, as the caller gave it


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
        metadata: Mapping[str, str],
    ) -> GatewayResult:
        """Capture `amount_nanos` of `currency`. GatewayError: nothing done; GatewayTimeout:
        unknown; KeyClosed: the key was closed, nothing done."""

    async def refund(
        self,
        idempotency_key: str,
        fingerprint: str,
        *,
        charge_reference: str,
        amount_nanos: int,
        currency: str,
    ) -> GatewayResult:
        """Give back part of a capture; raises as `charge` does."""

    async def lookup(self, idempotency_key: str) -> GatewayRecord | None:
        """What was done under the key (None: nothing yet); no side effects."""

    async def close_key(self, idempotency_key: str) -> GatewayRecord:
        """Close the key unless something was done under it; what it now holds."""

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
        down: str = "",
        lose_answers: frozenset[str] = frozenset(),
    ) -> None:
        if not 0 <= error_rate <= 1:
            raise ValueError("SHOPMESH_GATEWAY_ERROR_RATE must be between 0 and 1")
        if down not in ("", "1", "lookups"):
            raise ValueError("SHOPMESH_GATEWAY_DOWN is 1 or lookups")
        if unknown := lose_answers - {"charge", "refund"}:
            raise ValueError(f"SHOPMESH_GATEWAY_LOSE_ANSWERS: no such kind {sorted(unknown)}")
        self._down = down
        self._lose_answers = lose_answers
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
            down=env.get("SHOPMESH_GATEWAY_DOWN") or "",
            lose_answers=frozenset(
                kind for kind in (env.get("SHOPMESH_GATEWAY_LOSE_ANSWERS") or "").split(",") if kind
            ),
        )

    async def close(self) -> None:
        await self._database.close()

    async def charge(
        self, idempotency_key, fingerprint, *, amount_nanos, currency, token, wallet, metadata
    ):
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

        operation = _Operation("charge", idempotency_key, fingerprint, amount_nanos, currency,
                               dict(metadata), decide)  # fmt: skip
        return await self._operate(operation)

    async def refund(
        self, idempotency_key, fingerprint, *, charge_reference, amount_nanos, currency
    ):
        def decide() -> GatewayResult:
            return GatewayResult(f"re_{uuid.uuid4().hex[:24]}", True)

        operation = _Operation("refund", idempotency_key, fingerprint, amount_nanos, currency,
                               {"charge_reference": charge_reference}, decide)  # fmt: skip
        return await self._operate(operation)

    async def lookup(self, idempotency_key: str) -> GatewayRecord | None:
        await self._reachable()
        return await self._database.read(_record, idempotency_key)

    async def close_key(self, idempotency_key: str) -> GatewayRecord:
        await self._reachable()
        return await self._database.write_locking(_close_key, idempotency_key)

    async def _reachable(self) -> None:
        """The latency and error knobs, for calls that do no work either way."""
        if self._latency:
            await asyncio.sleep(self._latency)
        if self._down or self._random.random() < self._error_rate:
            raise GatewayError("the gateway is unavailable")

    async def _operate(self, operation: _Operation) -> GatewayResult:
        if self._latency:
            await asyncio.sleep(self._latency)
        if self._down == "1":
            raise GatewayError("the gateway is unavailable")
        fault = self._random.random() < self._error_rate
        lose_response = (fault and self._random.random() < 0.5) or (
            operation.kind in self._lose_answers
        )
        if fault and not lose_response:
            raise GatewayError("the gateway is unavailable")
        result = await self._database.statement(_record_once, operation)
        if lose_response:  # it did the work, but the answer never arrives
            raise GatewayTimeout("the gateway timed out after accepting the request")
        return result


# The ledger's writes are "insert under a key unless something is there": the
# primary key decides between concurrent callers (ON CONFLICT DO NOTHING: the loser
# inserts nothing and reads the winner's record), so no transaction is needed.


@dataclass(frozen=True)
class _Operation:
    kind: str
    key: str
    fingerprint: str
    amount_nanos: int
    currency: str
    metadata: dict[str, str]
    decide: Callable[[], GatewayResult]


_COLUMNS = "kind, result, amount_nanos, currency, metadata, fingerprint"


def _from_row(row: tuple) -> GatewayRecord:
    kind, result, amount_nanos, currency, metadata, fingerprint = row
    return GatewayRecord(
        kind=kind,
        result=GatewayResult(**result) if kind != "closed" else None,
        amount_nanos=amount_nanos,
        currency=currency,
        metadata=metadata,
        fingerprint=fingerprint,
    )


async def _record(connection: Connection, key: str) -> GatewayRecord | None:
    row = await fetch_one(
        connection, f"SELECT {_COLUMNS} FROM gateway_operations WHERE idempotency_key = %s", (key,)
    )
    return _from_row(row) if row else None


async def _record_once(connection: Connection, operation: _Operation) -> GatewayResult:
    """Records the operation unless its key has a record; the result recorded under the
    key either way. One insert-if-absent in the common case: a record, once written,
    never changes, so reading the one that won needs no transaction around both."""
    result = operation.decide()
    inserted = await fetch_one(
        connection,
        "INSERT INTO gateway_operations (idempotency_key, fingerprint, result, create_us,"
        " kind, amount_nanos, currency, metadata) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (idempotency_key) DO NOTHING RETURNING 1",
        (operation.key, operation.fingerprint, Jsonb(asdict(result)), time.time_ns() // 1000,
         operation.kind, operation.amount_nanos, operation.currency,
         Jsonb(operation.metadata)),
    )  # fmt: skip
    if inserted:
        return result
    record = await _record(connection, operation.key)
    if record.kind == "closed":
        raise KeyClosed(operation.key)
    if record.fingerprint != operation.fingerprint:
        raise IdempotencyKeyReused(operation.key)
    return record.result


async def _close_key(connection: Connection, key: str) -> GatewayRecord:
    if (record := await _record(connection, key)) is not None:
        return record
    await connection.execute(
        "INSERT INTO gateway_operations (idempotency_key, fingerprint, result, create_us, kind)"
        " VALUES (%s, '', '{}', %s, 'closed')",
        (key, time.time_ns() // 1000),
    )
    return GatewayRecord("closed", None, 0, "", {}, "")
