"""The edge's Lua guards: filters that refuse, with a google.rpc.Status, requests the
transcoder or the services' gRPC library would mishandle.

Each guard's source is what it is given to start with (generated tables, for the
JSON guard), then fragments/edge/google_rpc_status.lua (how a guard refuses),
then the guard's own fragments/edge/<name>.lua.
"""

from __future__ import annotations

from typing import Any

from shopmesh.envoy.templates import FRAGMENTS_DIR, fill

__all__ = ["render"]

_STATUS = FRAGMENTS_DIR / "edge" / "google_rpc_status.lua"


def render(name: str, preamble: str = "") -> dict[str, Any]:
    """The typed_config of the Lua guard fragments/edge/<name>.lua."""
    source = (
        preamble + _STATUS.read_text() + "\n" + (FRAGMENTS_DIR / "edge" / f"{name}.lua").read_text()
    )
    return fill("edge/lua_guard", source=source)
