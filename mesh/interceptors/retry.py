"""Retry interceptor (tenacity): only what is safe, only what may help, never past the deadline.

A call is retried when all of these hold:
- app retries are on for the hop (off where Envoy/Istio retries it: one retry layer per hop);
- the contract says repeating it cannot do anything twice (MethodPolicy.retry_safe:
  NO_SIDE_EFFECTS, or IDEMPOTENT with its request_id set);
- it failed with UNAVAILABLE, or RESOURCE_EXHAUSTED (with a longer backoff), and not
  because a circuit breaker rejected it (then the error of the last attempt that did
  reach the upstream is the answer, so callers can tell "maybe done" from "never sent");
- attempts are left, the backoff still ends before the deadline, and the upstream's
  retry budget has room.
Backoff is exponential with full jitter (a uniform draw between 0 and the exponential cap).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import tenacity
from opentelemetry import trace

from mesh import contracts
from mesh.deadline import remaining
from mesh.interceptors._calls import never_sent, policy_of, with_timeout
from mesh.retry_budget import RetryBudget

__all__ = ["AioRetryInterceptor", "RetryInterceptor", "RetryPolicy"]

RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


@dataclass(frozen=True)
class RetryPolicy:
    enabled: bool = True
    max_attempts: int = 3
    # Full-jitter exponential backoff caps: base * 2**(attempt-1), at most max_backoff.
    base_backoff: float = 0.025
    max_backoff: float = 1.0
    # An overloaded upstream (RESOURCE_EXHAUSTED) gets more room before the next try.
    exhausted_base_backoff: float = 0.25
    exhausted_max_backoff: float = 2.0
    # Don't start an attempt with less time than this left before the deadline.
    min_attempt_time: float = 0.005


def _code(error: BaseException | None) -> grpc.StatusCode | None:
    return error.code() if isinstance(error, grpc.RpcError) else None


class _Retrier:
    """The decisions, shared by the sync and aio interceptors."""

    def __init__(self, upstream: str, policy: RetryPolicy, budget: RetryBudget) -> None:
        self.upstream = upstream
        self.policy = policy
        self.budget = budget
        self._waits = {
            grpc.StatusCode.UNAVAILABLE: tenacity.wait_random_exponential(
                multiplier=policy.base_backoff, max=policy.max_backoff
            ),
            grpc.StatusCode.RESOURCE_EXHAUSTED: tenacity.wait_random_exponential(
                multiplier=policy.exhausted_base_backoff, max=policy.exhausted_max_backoff
            ),
        }

    def applies(self, details: Any, request: Any) -> bool:
        return self.applies_to(policy_of(details), request)

    def applies_to(self, contract: contracts.MethodPolicy | None, request: Any) -> bool:
        return self.policy.enabled and contract is not None and contract.retry_safe(request)

    def worth_retrying(self, error: BaseException) -> bool:
        return _code(error) in RETRYABLE_CODES and not getattr(error, "breaker_open", False)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        return self._waits[_code(state.outcome.exception())](state)

    def _stop(self, deadline: float | None) -> Any:
        def past_deadline(state: tenacity.RetryCallState) -> bool:
            left = remaining(deadline)
            return left is not None and left - state.upcoming_sleep < self.policy.min_attempt_time

        def budget_spent(state: tenacity.RetryCallState) -> bool:
            # Checked last, so budget is only spent on retries that will happen.
            return not self.budget.try_spend()

        return tenacity.stop_after_attempt(self.policy.max_attempts) | past_deadline | budget_spent

    @staticmethod
    def _retry_noter(span: trace.Span | None) -> Any:
        """An event on the call's span (by default the current one) before each retry."""

        def note_retry(state: tenacity.RetryCallState) -> None:
            code = _code(state.outcome.exception())
            (span or trace.get_current_span()).add_event(
                "retry",
                {
                    "rpc.retry.attempt": state.attempt_number + 1,
                    "rpc.retry.after_code": code.name if code else "",
                    "rpc.retry.backoff_s": state.upcoming_sleep,
                },
            )

        return note_retry

    def start(self, timeout: float | None) -> float | None:
        """Count one logical call for the budget; returns its absolute deadline."""
        self.budget.record_call()
        return time.monotonic() + timeout if timeout is not None else None

    def options(self, deadline: float | None, span: trace.Span | None = None) -> dict[str, Any]:
        """tenacity arguments for the retries of a call whose first attempt failed."""
        return {
            "retry": tenacity.retry_if_exception(self.worth_retrying),
            "wait": self._wait,
            "stop": self._stop(deadline),
            "before_sleep": self._retry_noter(span),
            "reraise": True,
        }


class RetryInterceptor(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, upstream: str, policy: RetryPolicy, budget: RetryBudget) -> None:
        self._retrier = _Retrier(upstream, policy, budget)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if not self._retrier.applies(details, request):
            return continuation(details, request)
        deadline = self._retrier.start(details.timeout)
        # Fast path: most calls succeed first time and never pay for tenacity's machinery.
        outcome = continuation(details, request)
        first_error = outcome.exception()
        if first_error is None or not self._retrier.worth_retrying(first_error):
            return outcome
        last_sent = outcome
        try:
            for attempt in tenacity.Retrying(**self._retrier.options(deadline)):
                with attempt:
                    if attempt.retry_state.attempt_number == 1:
                        raise first_error
                    outcome = continuation(with_timeout(details, remaining(deadline)), request)
                    error = outcome.exception()
                    if error is not None:
                        if not never_sent(error):
                            last_sent = outcome
                        raise error
        except grpc.RpcError:
            pass  # the last attempt that reached the upstream is the answer (see below)
        return last_sent if never_sent(outcome) else outcome


class AioRetryInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, upstream: str, policy: RetryPolicy, budget: RetryBudget) -> None:
        self._retrier = _Retrier(upstream, policy, budget)

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if not self._retrier.applies(details, request):
            return await continuation(details, request)
        deadline = self._retrier.start(details.timeout)

        async def attempt(seconds: float | None) -> Any:
            call = await continuation(with_timeout(details, seconds), request)
            await call  # raises AioRpcError when the attempt failed
            return call

        # Fast path: most calls succeed first time and never pay for tenacity's machinery.
        try:
            return await attempt(details.timeout)
        except grpc.RpcError as error:
            if not self._retrier.worth_retrying(error):
                raise
            return await aio_retry(self._retrier, error, deadline, attempt)


async def aio_retry(
    retrier: _Retrier,
    first_error: grpc.RpcError,
    deadline: float | None,
    attempt: Callable[[float | None], Awaitable[Any]],
    span: trace.Span | None = None,
) -> Any:
    """The retries of an asyncio call whose first attempt failed with `first_error`:
    `attempt(timeout)` makes one more, returning its outcome or raising its error."""
    last_sent = first_error
    try:
        async for retry in tenacity.AsyncRetrying(**retrier.options(deadline, span)):
            with retry:
                if retry.retry_state.attempt_number == 1:
                    raise first_error
                try:
                    return await attempt(remaining(deadline))
                except grpc.RpcError as error:
                    if not never_sent(error):
                        last_sent = error
                    raise
    except grpc.RpcError as error:
        # A retry the client refused to send (breaker open) must not hide that an
        # earlier attempt did reach the upstream: its outcome is the unknown one.
        if never_sent(error):
            raise last_sent from None
        raise
    raise AssertionError("unreachable: tenacity either returns an outcome or reraises")
