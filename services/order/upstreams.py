"""The order service's clients of catalog, inventory and payment.

The one place the saga's channels are made, all with `mesh.aio_connect`, so the
mesh's interceptors (tracing, deadline, retry, circuit breaker) apply to every
upstream call and the addresses come from the mesh configuration.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import grpc

import mesh
import mesh.config
from mesh import contracts

__all__ = ["UPSTREAMS", "Upstreams"]

UPSTREAMS = ("catalog", "inventory", "payment")


class Upstreams:
    """Stubs for the saga's upstream services, on one channel each."""

    def __init__(self, env: Mapping[str, str]) -> None:
        config = mesh.config.load(env)
        self._channels: dict[str, grpc.aio.Channel] = {
            name: mesh.aio_connect(name, config=config) for name in UPSTREAMS
        }
        self._stubs = {
            name: contracts.service(name).stub(channel) for name, channel in self._channels.items()
        }

    async def call(
        self, service: str, method: str, request: Any, deadline: float | None = None
    ) -> Any:
        """Calls `service.method`, never past `deadline` (time.monotonic(); None: no caller
        deadline, the contract's default timeout applies)."""
        timeout = contracts.service(service).methods[method].timeout
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
        return await getattr(self._stubs[service], method)(request, timeout=timeout)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
