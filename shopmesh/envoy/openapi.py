"""The REST API's OpenAPI description, which the edge serves at GET /v1/openapi.json.

protoc-gen-openapiv2 writes it from proto/ (`make gen`, see tools/codegen.py) to
gen/openapi/ beside the generated Python stubs the contracts are loaded from;
the local mesh copies it into its run directory and the edge answers the route
from that copy.
"""

from __future__ import annotations

import pathlib
import shutil
from typing import Any

import shop

from shopmesh.envoy.templates import fill

__all__ = ["MAX_BYTES", "PATH", "committed", "route", "write"]

PATH = "/v1/openapi.json"
# Envoy refuses a direct response body above the route config's limit (4 KiB
# unless raised); the description is tens of KiB.
MAX_BYTES = 1024 * 1024
_FILE = pathlib.PurePath("openapi", "shop.swagger.json")


def committed() -> pathlib.Path:
    """gen/openapi/shop.swagger.json of the checkout whose stubs (gen/python/shop) are loaded."""
    for stubs in shop.__path__:
        candidate = pathlib.Path(stubs).resolve().parents[1] / _FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no gen/{_FILE} beside the generated stubs in {list(shop.__path__)}: "
        "shopmesh serves the OpenAPI description from a checkout (`make gen` writes it)"
    )


def write(target: pathlib.Path) -> pathlib.Path:
    source = committed()
    if source.stat().st_size > MAX_BYTES:
        raise ValueError(f"{source} is larger than the edge serves ({MAX_BYTES} bytes)")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def route(spec: pathlib.Path) -> dict[str, Any]:
    return fill("edge/openapi_route", path=PATH, spec=str(spec))
