"""The floor of the sidecars, for `shopmesh bench` only: two Envoys doing nothing but the hop.

`outbound()` takes an app's plaintext calls and forwards them over mutual TLS
to one address; `inbound()` terminates that mutual TLS and forwards to an app.
Same Envoy, same flags, same certificates, same TLS checks (client
certificate required, the server's SPIFFE ID matched) and HTTP/2 on both legs
as the mesh's sidecars (sidecar.py): what a sidecar costs beyond them is what
its features cost (RBAC, access logs, per-method routes and retries, health
checks, discovery, header handling).
"""

from __future__ import annotations

from typing import Any

from shopmesh.envoy import common
from shopmesh.envoy.templates import fill
from shopmesh.identity.certs import WorkloadCert

__all__ = ["inbound", "outbound"]


def inbound(identity: WorkloadCert, ca: str, app_port: int) -> dict[str, Any]:
    """An Envoy serving `identity`'s mTLS on a port the OS picks (listener "inbound"),
    forwarding to the app on `app_port`."""
    listener = fill(
        "floor/inbound",
        address=common.LOOPBACK,
        cert=str(identity.cert),
        key=str(identity.key),
        ca=ca,
    )
    app = fill("sidecar/local_app", address=common.LOOPBACK, port=app_port)
    return common.bootstrap(f"floor-inbound-{identity.workload}", identity.workload,
                            [listener], [app])  # fmt: skip


def outbound(
    identity: WorkloadCert, ca: str, server_identity: str, server_name: str, port: int
) -> dict[str, Any]:
    """An Envoy taking plaintext calls on a port the OS picks (listener "outbound") and
    sending them as `identity` over mTLS to 127.0.0.1:`port`, which must prove it is
    `server_identity` (a SPIFFE ID)."""
    listener = fill("floor/outbound", address=common.LOOPBACK)
    upstream = fill(
        "floor/upstream",
        sni=server_name,
        cert=str(identity.cert),
        key=str(identity.key),
        ca=ca,
        server_identity=server_identity,
        address=common.LOOPBACK,
        port=port,
    )
    return common.bootstrap(f"floor-outbound-{identity.workload}", identity.workload,
                            [listener], [upstream])  # fmt: skip
