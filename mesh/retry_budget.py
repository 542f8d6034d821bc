"""A retry budget per upstream: retries may add at most a fixed share of recent calls.

Without one, every client retrying every failed call during an outage multiplies
the load on a struggling upstream by the attempt count. With it, extra attempts
are capped at `ratio` of the calls seen in the last `window` seconds, plus a small
floor so a quiet client can still retry an occasional blip.
"""

from __future__ import annotations

import threading
import time
from collections import deque

__all__ = ["RetryBudget"]

TRIM_AT = 4096  # calls remembered before record_call drops those older than the window


class RetryBudget:
    def __init__(self, ratio: float = 0.2, min_retries: int = 10, window: float = 10.0) -> None:
        if not 0 <= ratio <= 1:
            raise ValueError("ratio must be between 0 and 1")
        self.ratio = ratio
        self.min_retries = min_retries
        self.window = window
        self._calls: deque[float] = deque()
        self._retries: deque[float] = deque()
        # Sync channels call from many threads; aio channels from one loop.
        self._lock = threading.Lock()

    def _trim(self, now: float) -> None:
        horizon = now - self.window
        for stamps in (self._calls, self._retries):
            while stamps and stamps[0] < horizon:
                stamps.popleft()

    def record_call(self) -> None:
        """Count one logical call (not its retries).

        Every call of a retried method pays this, so it takes no lock: a deque's
        append is atomic. Old calls are dropped when a retry asks (try_spend), and
        here only once the deque has grown (to bound its memory when no retry asks).
        """
        calls = self._calls
        calls.append(time.monotonic())
        if len(calls) > TRIM_AT:
            with self._lock:
                self._trim(time.monotonic())

    def try_spend(self) -> bool:
        """Take permission for one retry; False when the budget is used up."""
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            allowed = len(self._retries) < self.min_retries + self.ratio * len(self._calls)
            if allowed:
                self._retries.append(now)
            return allowed
