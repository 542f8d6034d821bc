"""Deadlines: every call gets one, and a server passes what is left of its own downstream.

A server handling a request records its deadline in a context variable
(`serving_until`, which the services' runtime enters for every request); client
calls made while handling it are never given more time than that. asyncio
copies context variables into tasks, so work the handler spawns inherits the
deadline too.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

__all__ = ["effective_timeout", "inbound_deadline", "remaining", "serving_until"]

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


@contextlib.contextmanager
def serving_until(deadline: float | None) -> Iterator[None]:
    """Within this block, downstream calls get at most until `deadline` (absolute
    time.monotonic(); None: the request being served has no deadline)."""
    token = _inbound.set(deadline)
    try:
        yield
    finally:
        _inbound.reset(token)
