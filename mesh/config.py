"""Where each upstream service is and how to reach it, from the environment.

Sources, later ones winning:
1. the default: the Kubernetes Service DNS name `<service>:50051` (same namespace);
2. `SHOPMESH_MESH_CONFIG`: a YAML file, written by the local runner, e.g.
       app_retries: false          # a sidecar retries these hops
       upstreams:
         inventory:
           address: 127.0.0.1:15001
           tls: {ca: ca.pem, cert: order.pem, key: order-key.pem, server_name: inventory}
3. `SHOPMESH_UPSTREAM_<SERVICE>=host:port` for one upstream, and
   `SHOPMESH_APP_RETRIES=0|1`.

Plaintext is used unless an upstream has `tls` (proxyless mTLS); with a local
sidecar the app speaks plaintext to loopback and the sidecar does mTLS.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

__all__ = ["DEFAULT_PORT", "MeshConfig", "TlsFiles", "Upstream", "load"]

DEFAULT_PORT = 50051


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for mutual TLS straight to an upstream (no sidecar)."""

    ca: pathlib.Path
    cert: pathlib.Path
    key: pathlib.Path
    # Name to verify in the upstream's certificate when the address is an IP.
    server_name: str | None = None


@dataclass(frozen=True)
class Upstream:
    name: str
    address: str
    tls: TlsFiles | None = None


@dataclass(frozen=True)
class MeshConfig:
    upstreams: dict[str, Upstream] = field(default_factory=dict)
    # Off when Envoy/Istio retries the hop: one retry layer per hop.
    app_retries: bool = True

    def upstream(self, name: str) -> Upstream:
        return self.upstreams.get(name) or Upstream(name, f"{name}:{DEFAULT_PORT}")


def _tls(spec: Mapping | None, base: pathlib.Path) -> TlsFiles | None:
    if not spec:
        return None
    return TlsFiles(
        ca=base / spec["ca"],
        cert=base / spec["cert"],
        key=base / spec["key"],
        server_name=spec.get("server_name"),
    )


def _flag(value: str, name: str) -> bool:
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be 0 or 1, not {value!r}")


def load(env: Mapping[str, str] = os.environ) -> MeshConfig:
    upstreams: dict[str, Upstream] = {}
    app_retries = True
    if path := env.get("SHOPMESH_MESH_CONFIG"):
        file = pathlib.Path(path)
        document = yaml.safe_load(file.read_text()) or {}
        app_retries = bool(document.get("app_retries", True))
        for name, spec in (document.get("upstreams") or {}).items():
            upstreams[name] = Upstream(name, spec["address"], _tls(spec.get("tls"), file.parent))
    prefix = "SHOPMESH_UPSTREAM_"
    for key, value in env.items():
        if key.startswith(prefix) and value:
            name = key.removeprefix(prefix).lower()
            previous = upstreams.get(name)
            upstreams[name] = Upstream(name, value, previous.tls if previous else None)
    if "SHOPMESH_APP_RETRIES" in env:
        app_retries = _flag(env["SHOPMESH_APP_RETRIES"], "SHOPMESH_APP_RETRIES")
    return MeshConfig(upstreams=upstreams, app_retries=app_retries)
