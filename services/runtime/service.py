"""What the runtime needs to know about a service: the small object each one exports.

Each service package exposes `SERVICE = Service(...)` in its `__init__`; the
runtime finds it by name (`services.<name>`), so adding a service touches no
runtime code.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from services.runtime.config import ServerConfig

__all__ = ["Service", "Store", "lookup"]


class Store(Protocol):
    """A service's storage as the runtime sees it: a health probe and a close."""

    async def probe(self) -> None:
        """Return when the store is usable; raise when it is not."""

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Service:
    # The contract's short name in proto/ (mesh.contracts.service(name)).
    name: str
    open_store: Callable[[ServerConfig], Awaitable[Store]]
    make_servicer: Callable[[ServerConfig, Store], Any]
    # Long-running jobs (e.g. releasing expired reservations), cancelled on shutdown.
    background: tuple[Callable[[ServerConfig, Store], Coroutine[Any, Any, None]], ...] = ()


def lookup(name: str) -> Service:
    """The Service exported by the package `services.<name>`."""
    try:
        module = importlib.import_module(f"services.{name}")
    except ModuleNotFoundError as error:
        if error.name == f"services.{name}":
            raise KeyError(f"no service named {name!r} in services/") from None
        raise
    service = getattr(module, "SERVICE", None)
    if not isinstance(service, Service):
        raise KeyError(f"services.{name} does not export SERVICE = Service(...)")
    return service
