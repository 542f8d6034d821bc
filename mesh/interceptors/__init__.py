"""Client interceptors, one concern per module, composed by mesh.channel in this order
(outermost first):

1. tracing  - one client span per logical call; W3C trace context in the metadata.
2. deadline - the contract's default timeout unless the caller set one, never past
              the deadline of the request being served.
3. retry    - retry-safe calls only, on UNAVAILABLE / RESOURCE_EXHAUSTED, with full
              jitter, within the deadline and the upstream's retry budget.
4. breaker  - per-upstream circuit breaker; sees every attempt, fails fast when open.

Retry sits outside the breaker so that a breaker which opens mid-retry stops the
retries at once (its fast failures are never retried), and every real attempt
counts towards the breaker's view of the upstream's health.
"""

from mesh.interceptors.breaker import AioBreakerInterceptor, BreakerInterceptor
from mesh.interceptors.deadline import AioDeadlineInterceptor, DeadlineInterceptor
from mesh.interceptors.retry import AioRetryInterceptor, RetryInterceptor, RetryPolicy

__all__ = [
    "AioBreakerInterceptor",
    "AioDeadlineInterceptor",
    "AioRetryInterceptor",
    "BreakerInterceptor",
    "DeadlineInterceptor",
    "RetryInterceptor",
    "RetryPolicy",
]
