"""What the client interceptors share: method lookup and calls failed without reaching the wire."""

from __future__ import annotations

from typing import Any

import grpc

from mesh import contracts


def method_name(details: grpc.ClientCallDetails) -> str:
    method = details.method
    return method.decode() if isinstance(method, bytes) else method


def policy_of(details: grpc.ClientCallDetails) -> contracts.MethodPolicy | None:
    """The contract policy of the called method; None for methods outside proto/ (health, ...)."""
    try:
        return contracts.method_policy(method_name(details))
    except KeyError:
        return None


def with_timeout(details: Any, timeout: float | None) -> Any:
    # Both grpc's sync and aio ClientCallDetails are namedtuples.
    return details._replace(timeout=timeout)


def never_sent(error: BaseException) -> bool:
    """True when the client failed the call itself and no attempt reached the network.

    Then the upstream surely did nothing (an open breaker, a deadline spent before
    sending), which a caller undoing work needs to tell apart from an UNAVAILABLE
    whose request may have been executed.
    """
    return getattr(error, "sent", True) is False


class AioLocalError(grpc.aio.AioRpcError):
    """An aio call failed by the client itself; `breaker_open` marks breaker rejections."""

    sent = False

    def __init__(self, code: grpc.StatusCode, details: str, breaker_open: bool = False) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)
        self.breaker_open = breaker_open


class LocalFailure(grpc.RpcError, grpc.Future, grpc.Call):
    """A sync call outcome failed by the client itself, shaped like a finished failed call."""

    sent = False

    def __init__(self, code: grpc.StatusCode, details: str, breaker_open: bool = False) -> None:
        super().__init__()
        self._code = code
        self._details = details
        self.breaker_open = breaker_open

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self._code.name}: {self._details}>"

    def initial_metadata(self) -> tuple:
        return ()

    def trailing_metadata(self) -> tuple:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def running(self) -> bool:
        return False

    def done(self) -> bool:
        return True

    def result(self, timeout: float | None = None) -> Any:
        raise self

    def exception(self, timeout: float | None = None) -> grpc.RpcError:
        return self

    def traceback(self, timeout: float | None = None) -> None:
        return None

    def add_callback(self, callback: Any) -> bool:
        return False

    def add_done_callback(self, fn: Any) -> None:
        fn(self)
