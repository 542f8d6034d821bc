"""Deadline interceptor: every call leaves with a deadline (see mesh.deadline)."""

from __future__ import annotations

from typing import Any

import grpc

from mesh import contracts
from mesh.deadline import effective_timeout
from mesh.interceptors._calls import AioLocalError, LocalFailure, policy_of, with_timeout

__all__ = ["AioDeadlineInterceptor", "DeadlineInterceptor"]

EXPIRED = "the deadline of the request being served has passed; call not sent"


def _timeout(details: grpc.ClientCallDetails) -> float:
    policy = policy_of(details)
    default = policy.timeout if policy else contracts.DEFAULT_TIMEOUT_S
    return effective_timeout(details.timeout, default)


class DeadlineInterceptor(grpc.UnaryUnaryClientInterceptor):
    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        timeout = _timeout(details)
        if timeout <= 0:
            return LocalFailure(grpc.StatusCode.DEADLINE_EXCEEDED, EXPIRED)
        return continuation(with_timeout(details, timeout), request)


class AioDeadlineInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        timeout = _timeout(details)
        if timeout <= 0:
            raise AioLocalError(grpc.StatusCode.DEADLINE_EXCEEDED, EXPIRED)
        return await continuation(with_timeout(details, timeout), request)
