"""Every shopper call with its start time, so results can be cut into the scenario's phases.

The load generator (shopmesh.load.generator) keeps latencies per operation for the
whole run; a chaos scenario needs to know what happened *while* a replica was
down or a breaker open. Timeline wraps a shopper (RestShopper, GrpcShopper,
...) and records each call it makes; it also turns a transport exception into
an outcome, so a broken connection counts as a client-visible error instead of
vanishing with its task.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shopmesh.load.recorder import OK
from shopmesh.load.stats import percentile

__all__ = ["SUMMARY_HEADERS", "Call", "Timeline", "summarize"]


@dataclass(frozen=True)
class Call:
    operation: str
    start: float  # time.monotonic()
    seconds: float
    outcome: str  # "OK", "HTTP 503", a gRPC code name, or "EXCEPTION <type>"
    note: str | None  # e.g. "checkout FAILED" (a correct answer, not an error)

    @property
    def ok(self) -> bool:
        return self.outcome == OK


class Timeline:
    def __init__(self, shopper: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self._shopper = shopper
        self._clock = clock
        self.calls: list[Call] = []
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def learn(self):
        return await self._shopper.learn()

    def __getattr__(self, operation: str):
        action = getattr(self._shopper, operation)

        async def timed(*args):
            self._in_flight += 1
            self._idle.clear()
            start = self._clock()
            try:
                outcome, note = await action(*args)
            except Exception as error:  # a broken connection is what the shopper saw
                outcome, note = f"EXCEPTION {type(error).__name__}", None
            finally:
                self._in_flight -= 1
                if not self._in_flight:
                    self._idle.set()
            self.calls.append(Call(operation, start, self._clock() - start, outcome, note))
            return outcome, note

        return timed

    async def drained(self, within: float = 30.0) -> None:
        """Returns when no call is in flight (or after `within` seconds)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), within)

    def between(self, start: float, end: float, operation: str | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if start <= c.start < end and (operation is None or c.operation == operation)
        ]


def summarize(label: str, calls: list[Call]) -> list[object]:
    """A table row: label, calls, errors, error %, p50/p99/max ms, outcomes that were not OK."""
    ms = [c.seconds * 1000 for c in calls]
    errors = Counter(c.outcome for c in calls if not c.ok)
    bad = sum(errors.values())
    return [
        label,
        len(calls),
        bad,
        100.0 * bad / len(calls) if calls else 0.0,
        percentile(ms, 50),
        percentile(ms, 99),
        max(ms, default=float("nan")),
        ", ".join(f"{k}:{n}" for k, n in sorted(errors.items())) or "-",
    ]


SUMMARY_HEADERS = [
    "phase",
    "calls",
    "errors",
    "error %",
    "p50 ms",
    "p99 ms",
    "max ms",
    "errors by kind",
]
