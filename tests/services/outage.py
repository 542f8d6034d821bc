"""A service's database made unreachable for a while, and waiting for the service to recover."""

from __future__ import annotations

import asyncio
import time

from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["RECOVERY_SECONDS", "Outage", "serving_again"]

# Once the database answers again, a service's pool reconnects within this (generous on a
# busy machine: the pool retries a lost connection with a backoff of its own).
RECOVERY_SECONDS = 10


class Outage:
    """Roles cut off from their databases (LocalPostgres.cut_off) for one test.

    A role is cut off server-wide, so every test of the session would see it:
    the `outage` fixture restores whatever is still cut off when the test ends.
    """

    def __init__(self, postgres) -> None:
        self.postgres = postgres
        self.roles: set[str] = set()

    def begin(self, *roles: str) -> None:
        self.roles.update(roles)
        self.postgres.cut_off(roles)

    def end(self) -> None:
        self.postgres.restore(sorted(self.roles))
        self.roles.clear()


async def serving_again(channel, service: str = "", within: float = RECOVERY_SECONDS) -> float:
    """Returns (the seconds it took) once a health Check of `service` answers SERVING;
    fails after `within` seconds."""
    health = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest(service=service)
    started = time.monotonic()
    while (await health.Check(request)).status != health_pb2.HealthCheckResponse.SERVING:
        assert time.monotonic() - started < within, f"{service!r} still NOT_SERVING"
        await asyncio.sleep(0.1)
    return time.monotonic() - started
