"""Deadlines: every call gets one, and a server passes what is left of its own downstream.

A server handling a request records its deadline in a context variable (the
`InboundDeadline` server interceptor); client calls made while handling it are
never given more time than that. asyncio copies context variables into tasks, so
work the handler spawns inherits the deadline too.
"""

from __future__ import annotations

import contextvars
import time

import grpc

from mesh.server.unary import Behavior, UnaryWrappingInterceptor

__all__ = ["InboundDeadline", "effective_timeout", "inbound_deadline", "remaining"]

# Absolute time.monotonic() by which the request being served must be answered.
_inbound: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "shopmesh_inbound_deadline", default=None
)


def inbound_deadline() -> float | None:
    return _inbound.get()


def remaining(deadline: float | None) -> float | None:
    """Seconds left until an absolute monotonic deadline (None: no deadline)."""
    return None if deadline is None else deadline - time.monotonic()


def effective_timeout(requested: float | None, default: float) -> float:
    """The timeout a call gets: the caller's, else the contract default, never past the inbound
    deadline. May be <= 0 when the inbound deadline has already passed."""
    timeout = requested if requested is not None else default
    left = remaining(_inbound.get())
    return timeout if left is None else min(timeout, left)


class InboundDeadline(UnaryWrappingInterceptor):
    """Server interceptor: records the incoming call's deadline for downstream calls."""

    def wrap(self, behavior: Behavior, method: str) -> Behavior:
        async def with_deadline(request, context: grpc.aio.ServicerContext):
            left = context.time_remaining()
            # gRPC reports "no deadline" as a very large number of seconds.
            deadline = time.monotonic() + left if left is not None and left < 1e8 else None
            token = _inbound.set(deadline)
            try:
                return await behavior(request, context)
            finally:
                _inbound.reset(token)

        return with_deadline
