"""One circuit breaker per upstream service (pybreaker), with logged and exported state.

A breaker counts only failures that say the upstream is unwell. Errors that are
the caller's business (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ...) count
as successes: a storm of bad requests must not cut off a healthy service.
"""

from __future__ import annotations

import logging
import threading
import time

import grpc
import pybreaker
from prometheus_client import Counter, Gauge

__all__ = ["UNHEALTHY_CODES", "breaker_for", "rejecting", "reset_all"]

log = logging.getLogger("shopmesh.breaker")

UNHEALTHY_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)
STATE_VALUES = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_HALF_OPEN: 1, pybreaker.STATE_OPEN: 2}

BREAKER_STATE = Gauge(
    "shopmesh_client_breaker_state",
    "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open.",
    ["upstream"],
)
BREAKER_TRANSITIONS = Counter(
    "shopmesh_client_breaker_transitions_total",
    "Circuit breaker state changes per upstream and new state.",
    ["upstream", "state"],
)

FAIL_MAX = 5
RESET_TIMEOUT_S = 5.0


def _is_callers_problem(error: BaseException) -> bool:
    """pybreaker `exclude` hook: True means "not the upstream's fault"."""
    return not (isinstance(error, grpc.RpcError) and error.code() in UNHEALTHY_CODES)


class _StateReporter(pybreaker.CircuitBreakerListener):
    """Logs and exports state changes, and keeps `_clean` (see _healthy())."""

    def failure(self, cb, exc) -> None:
        _clean[cb.name] = False

    def success(self, cb) -> None:
        _clean[cb.name] = cb.current_state == pybreaker.STATE_CLOSED and cb.fail_counter == 0

    def state_change(self, cb, old_state, new_state) -> None:
        # The counter is reset by now when the breaker closes.
        _clean[cb.name] = new_state.name == pybreaker.STATE_CLOSED and cb.fail_counter == 0
        if new_state.name == pybreaker.STATE_OPEN:
            _opened[cb.name] = time.monotonic()
        old = old_state.name if old_state else None
        log.warning(
            "circuit breaker %s: %s -> %s",
            cb.name,
            old,
            new_state.name,
            extra={"upstream": cb.name, "old_state": old, "new_state": new_state.name},
        )
        BREAKER_STATE.labels(cb.name).set(STATE_VALUES[new_state.name])
        BREAKER_TRANSITIONS.labels(cb.name, new_state.name).inc()


_breakers: dict[str, pybreaker.CircuitBreaker] = {}
_opened: dict[str, float] = {}  # upstream -> time.monotonic() the breaker last opened
# upstream -> closed with no failure counted: a success would change nothing
_clean: dict[str, bool] = {}
_lock = threading.Lock()


def breaker_for(
    upstream: str, fail_max: int = FAIL_MAX, reset_timeout: float = RESET_TIMEOUT_S
) -> pybreaker.CircuitBreaker:
    """The process-wide breaker of an upstream, shared by all channels to it."""
    with _lock:
        if upstream not in _breakers:
            _breakers[upstream] = pybreaker.CircuitBreaker(
                fail_max=fail_max,
                reset_timeout=reset_timeout,
                exclude=[_is_callers_problem],
                listeners=[_StateReporter()],
                name=upstream,
                # Let the upstream's own error through on the call that trips it.
                throw_new_error_on_trip=False,
            )
            BREAKER_STATE.labels(upstream).set(0)
            _clean[upstream] = True
        return _breakers[upstream]


def _healthy(upstream: str) -> bool:
    """Whether the upstream's breaker is closed with no failure counted, so that a call that
    succeeds need not be shown to it (read on every call, so kept by its listener rather
    than asked of pybreaker)."""
    return _clean.get(upstream, True)


def rejecting(upstream: str) -> bool:
    """Whether a call to the upstream would be refused right now (open, no probe due yet).

    Lets a caller skip work whose only purpose is a call that cannot be made, e.g. a
    checkout holding stock for a charge while the payment breaker is open.
    """
    breaker = _breakers.get(upstream)
    if breaker is None or breaker.current_state != pybreaker.STATE_OPEN:
        return False
    return time.monotonic() < _opened.get(upstream, 0.0) + breaker.reset_timeout


def reset_all() -> None:
    """Forget every breaker (tests, or a process that reconfigures its upstreams)."""
    with _lock:
        _breakers.clear()
        _opened.clear()
        _clean.clear()
