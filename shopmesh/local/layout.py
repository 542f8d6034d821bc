"""Where the local mesh keeps its files under one run directory (./var/mesh by default).

certs/    the mesh CA and one certificate per workload; the end users' token
          issuer's signing keys and their public JWKS (jwks.json)
eds/      discovery files the proxies watch (two per service: its stable and its new version)
runtime/  the runtime tree every proxy reads the split between versions from (current -> tree-*)
envoy/    rendered Envoy bootstraps and the admin addresses Envoy wrote
mesh/     each app's mesh config (where its sidecar's outbound ports are)
postgres/ the local PostgreSQL server's data (a database per service, shared by its replicas)
logs/     every process's log, proxies' access and health check logs
state.json  what is running where, for `shopmesh status`
control.sock  the runner's control socket, while `shopmesh up` runs
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

__all__ = ["DEFAULT_RUN_DIR", "RunDir"]

DEFAULT_RUN_DIR = pathlib.Path("var/mesh")


@dataclass(frozen=True)
class RunDir:
    root: pathlib.Path

    @property
    def certs(self) -> pathlib.Path:
        return self.root / "certs"

    @property
    def ca(self) -> pathlib.Path:
        return self.certs / "ca.pem"

    @property
    def jwks(self) -> pathlib.Path:
        """What the edge and the order sidecars trust end users' tokens by."""
        return self.certs / "jwks.json"

    @property
    def eds(self) -> pathlib.Path:
        return self.root / "eds"

    @property
    def runtime(self) -> pathlib.Path:
        return self.root / "runtime"

    @property
    def control(self) -> pathlib.Path:
        """The runner's control socket (`shopmesh rollout` talks to it)."""
        return self.root / "control.sock"

    @property
    def envoy(self) -> pathlib.Path:
        return self.root / "envoy"

    @property
    def logs(self) -> pathlib.Path:
        return self.root / "logs"

    @property
    def state(self) -> pathlib.Path:
        return self.root / "state.json"

    @property
    def transcoder_descriptor(self) -> pathlib.Path:
        return self.envoy / "transcoder.binpb"

    @property
    def openapi(self) -> pathlib.Path:
        """The OpenAPI description the edge serves (GET /v1/openapi.json)."""
        return self.envoy / "openapi.json"

    def bootstrap(self, proxy: str) -> pathlib.Path:
        return self.envoy / f"{proxy}.yaml"

    def admin_address(self, proxy: str) -> pathlib.Path:
        return self.envoy / f"{proxy}.admin"

    def mesh_config(self, replica: str) -> pathlib.Path:
        return self.root / "mesh" / f"{replica}.yaml"

    @property
    def postgres(self) -> pathlib.Path:
        return self.root / "postgres"

    def create(self) -> RunDir:
        for directory in (
            self.certs,
            self.eds,
            self.runtime,
            self.envoy,
            self.logs,
            self.root / "mesh",
        ):
            directory.mkdir(parents=True, exist_ok=True)
        return self
