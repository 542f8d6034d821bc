"""Circuit breaker interceptor: one breaker per upstream (mesh.breakers), every attempt counted.

While the breaker is open, calls fail at once with UNAVAILABLE naming the breaker and
never reach the network. After the reset timeout one probe call goes through; the
others keep failing fast until the probe has answered.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pybreaker

from mesh import breakers
from mesh.breakers import breaker_for
from mesh.interceptors._calls import AioLocalError, LocalFailure

__all__ = ["AioBreakerInterceptor", "BreakerInterceptor"]


class _Admission:
    """Decides whether a call may try the upstream, and tracks the half-open probe."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.breaker = breaker_for(upstream)
        self._probe_lock = threading.Lock()
        self._probing = False

    def open_message(self) -> str:
        return f"circuit breaker '{self.upstream}' is open: failing fast without calling upstream"

    def claim_probe(self) -> bool | None:
        """None: the breaker is closed. True: this call is the probe. False: reject."""
        if self.breaker.current_state == pybreaker.STATE_CLOSED:
            return None
        with self._probe_lock:
            if self._probing:
                return False
            self._probing = True
            return True

    def healthy(self) -> bool:
        """Closed with no recent failure: a success would change nothing, so skip pybreaker."""
        return breakers._healthy(self.upstream)

    def record_failure(self, error: grpc.RpcError) -> None:
        """Let pybreaker count a failed call (it ignores errors that are the caller's)."""
        try:
            with self.breaker.calling():
                raise error
        except (grpc.RpcError, pybreaker.CircuitBreakerError):
            pass

    def release_probe(self, claimed: bool | None) -> None:
        if claimed:
            with self._probe_lock:
                self._probing = False

    def aio_rejected(self) -> AioLocalError:
        return AioLocalError(grpc.StatusCode.UNAVAILABLE, self.open_message(), breaker_open=True)

    async def aio_guarded(self, attempt: Callable[[], Awaitable[Any]]) -> Any:
        """The outcome of `attempt()` (one asyncio call, awaited) as the breaker allows it."""
        if self.healthy():
            try:
                return await attempt()
            except grpc.RpcError as error:
                self.record_failure(error)
                raise
        claimed = self.claim_probe()
        if claimed is False:
            raise self.aio_rejected()
        try:
            with self.breaker.calling():
                return await attempt()  # raises AioRpcError when the attempt failed
        except pybreaker.CircuitBreakerError:
            raise self.aio_rejected() from None
        finally:
            self.release_probe(claimed)


class BreakerInterceptor(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, upstream: str) -> None:
        self._admission = _Admission(upstream)

    def _rejected(self) -> LocalFailure:
        message = self._admission.open_message()
        return LocalFailure(grpc.StatusCode.UNAVAILABLE, message, breaker_open=True)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if self._admission.healthy():
            outcome = continuation(details, request)
            error = outcome.exception()
            if isinstance(error, grpc.RpcError):
                self._admission.record_failure(error)
            return outcome
        claimed = self._admission.claim_probe()
        if claimed is False:
            return self._rejected()
        outcome = None
        try:
            with self._admission.breaker.calling():
                outcome = continuation(details, request)
                error = outcome.exception()
                if error is not None:
                    raise error
        except pybreaker.CircuitBreakerError:
            return self._rejected()
        except Exception:
            # The breaker has recorded the failure; hand the failed call back as it was.
            if outcome is None:
                raise
        finally:
            self._admission.release_probe(claimed)
        return outcome


class AioBreakerInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, upstream: str) -> None:
        self._admission = _Admission(upstream)

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        async def attempt() -> Any:
            call = await continuation(details, request)
            await call
            return call

        return await self._admission.aio_guarded(attempt)
