"""Server configuration from the environment, the same for every service."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["ServerConfig"]

DEFAULT_LISTEN = "0.0.0.0:50051"
DEFAULT_METRICS_LISTEN = "0.0.0.0:9464"


@dataclass(frozen=True)
class ServerConfig:
    """How one service process runs.

    `env` keeps the whole environment the config was read from, so a service
    reads its own knobs (e.g. the payment gateway's latency) and the client
    mesh config (mesh.config.load(config.env)) from the same source, and tests
    configure a server without touching os.environ.
    """

    service: str
    listen: str = DEFAULT_LISTEN
    # The service's own PostgreSQL database: a libpq URL or key=value string. Empty:
    # libpq reads PGHOST, PGDATABASE, PGUSER, PGPASSWORD, ... (how Kubernetes passes
    # a Secret's fields without code of ours).
    database_url: str = field(default="", repr=False)
    metrics_listen: str = DEFAULT_METRICS_LISTEN  # "" turns the /metrics endpoint off
    drain_seconds: float = 10.0
    log_level: str = "INFO"
    # Processes serving one port together (SO_REUSEPORT); the kernel spreads connections.
    workers: int = 1
    # Set in worker processes: share the port with the other workers.
    reuse_port: bool = False
    env: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] = os.environ) -> ServerConfig:
        drain = env.get("SHOPMESH_DRAIN_SECONDS", "10")
        try:
            drain_seconds = float(drain)
        except ValueError:
            raise ValueError(f"SHOPMESH_DRAIN_SECONDS must be a number, not {drain!r}") from None
        if drain_seconds < 0:
            raise ValueError("SHOPMESH_DRAIN_SECONDS must not be negative")
        workers = env.get("SHOPMESH_WORKERS") or "1"
        if not workers.isdigit() or int(workers) < 1:
            raise ValueError(f"SHOPMESH_WORKERS must be a whole number >= 1, not {workers!r}")
        return cls(
            service=service,
            listen=env.get("SHOPMESH_LISTEN") or DEFAULT_LISTEN,
            database_url=env.get("SHOPMESH_DATABASE_URL", ""),
            metrics_listen=env.get("SHOPMESH_METRICS_LISTEN", DEFAULT_METRICS_LISTEN),
            drain_seconds=drain_seconds,
            log_level=(env.get("SHOPMESH_LOG_LEVEL") or "INFO").upper(),
            workers=int(workers),
            reuse_port=env.get("SHOPMESH_REUSE_PORT") == "1",
            env=dict(env),
        )
