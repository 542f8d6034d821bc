"""Helpers for tests that run real servers on loopback (used by every service's tests).

async with serving("catalog", databases) as server:
    async with connect(server) as channel:
        stub = contracts.service("catalog").stub(channel)
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import grpc
from google.rpc import error_details_pb2, status_pb2

from services.runtime.config import ServerConfig
from services.runtime.end_user import CLAIMS_HEADER
from services.runtime.server import Server, create_server
from services.runtime.service import Service

__all__ = [
    "DatabaseSource",
    "ErrorDetails",
    "SpawnedServer",
    "connect",
    "end_user_metadata",
    "error_details",
    "serving",
    "spawn",
    "terminate",
    "test_config",
]


def terminate(process: subprocess.Popen, grace: float) -> None:
    """Stops one plain child: SIGTERM, then SIGKILL if it is still running after `grace` s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class DatabaseSource(Protocol):
    """Where a test's servers keep their data: the environment that points a service at
    its database(s) (SHOPMESH_DATABASE_URL, and the payment gateway's ledger)."""

    def env(self, service: str) -> Mapping[str, str]: ...


def test_config(
    name: str, databases: DatabaseSource, env: Mapping[str, str] | None = None, **overrides
):
    """A config for a loopback server on a free port, without a /metrics endpoint."""
    environment = {**databases.env(name), **(env or {})}
    settings = {
        "listen": "127.0.0.1:0",
        "database_url": environment.get("SHOPMESH_DATABASE_URL", ""),
        "metrics_listen": "",
        "drain_seconds": 0.0,
        "env": environment,
        **overrides,
    }
    return ServerConfig(service=name, **settings)


test_config.__test__ = False  # not a test, whatever its name says


@contextlib.asynccontextmanager
async def serving(
    name: str,
    databases: DatabaseSource,
    env: Mapping[str, str] | None = None,
    *,
    service: Service | None = None,
    tracer_provider=None,
    **overrides,
) -> AsyncIterator[Server]:
    """A started server for the service `name`, stopped (without grace) on exit."""
    config = test_config(name, databases, env, **overrides)
    server, _ = await create_server(config, service, tracer_provider=tracer_provider)
    try:
        yield server
    finally:
        await server.stop(0)


@contextlib.asynccontextmanager
async def connect(server_or_port) -> AsyncIterator[grpc.aio.Channel]:
    """A plain aio channel to a loopback server (or port)."""
    port = getattr(server_or_port, "port", server_or_port)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel


def end_user_metadata(subject: str, scopes: Iterable[str] = ()) -> tuple[tuple[str, str], ...]:
    """The verified claims a sidecar hands its app for a token of `subject`: what a test
    that calls an app directly sends in the sidecar's place."""
    claims: dict[str, str] = {"sub": subject}
    if scope := " ".join(scopes):
        claims["scope"] = scope
    value = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return ((CLAIMS_HEADER, value),)


@dataclass
class ErrorDetails:
    """The google.rpc.Status details of a failed call, unpacked."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    field_violations: dict[str, str] = field(default_factory=dict)  # field -> description
    precondition_subjects: list[str] = field(default_factory=list)

    @property
    def fields(self) -> set[str]:
        return set(self.field_violations)


def error_details(error: grpc.aio.AioRpcError) -> ErrorDetails:
    details = ErrorDetails(code=error.code(), message=error.details() or "")
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            bad = error_details_pb2.BadRequest()
            precondition = error_details_pb2.PreconditionFailure()
            if detail.Unpack(info):
                details.reason, details.domain = info.reason, info.domain
                details.metadata = dict(info.metadata)
            elif detail.Unpack(bad):
                for v in bad.field_violations:
                    details.field_violations[v.field] = v.description
            elif detail.Unpack(precondition):
                details.precondition_subjects += [v.subject for v in precondition.violations]
    return details


@dataclass
class SpawnedServer:
    """A service running as its own process (`python -m services <name>`)."""

    process: subprocess.Popen
    port: int
    log_path: pathlib.Path

    def log_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]


@contextlib.contextmanager
def spawn(
    name: str,
    databases: DatabaseSource,
    log_dir,
    env: Mapping[str, str] | None = None,
    *,
    command: list[str] | None = None,
    timeout: float = 30,
):
    """Start a service process on a free loopback port; yields once it serves.

    `command` replaces the default `python -m services <name>`.

    The port is read from the process's own "serving" log line. On exit the
    process is terminated (SIGTERM) and, if it does not stop, killed.
    """
    log_path = pathlib.Path(log_dir) / f"{name}-{time.monotonic_ns()}.log"
    environment = {
        **os.environ,
        "SHOPMESH_LISTEN": "127.0.0.1:0",
        "SHOPMESH_METRICS_LISTEN": "",
        **databases.env(name),
        **(env or {}),
    }
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command or [sys.executable, "-m", "services", name], env=environment, stderr=log
        )
    try:
        port = _wait_for_port(process, log_path, timeout)
        yield SpawnedServer(process, port, log_path)
    finally:
        terminate(process, grace=15)


def _wait_for_port(process: subprocess.Popen, log_path: pathlib.Path, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log_path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("message") == "serving":
                    return int(entry["extra"]["port"])
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log_path.read_text()}")
        time.sleep(0.05)
    raise TimeoutError(f"server did not start within {timeout}s: {log_path.read_text()}")
