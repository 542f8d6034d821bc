"""File-based endpoint discovery (EDS) for the local mesh.

Each service has one file, <eds_dir>/<service>.yaml: an xDS DiscoveryResponse
holding the service's ClusterLoadAssignment, i.e. the addresses of its
replicas' sidecars. Every proxy that calls the service watches the directory
and reloads the file when one is moved into it, so a file is always replaced
whole by a rename: Envoy never reads a half-written list of replicas.
"""

from __future__ import annotations

import itertools
import os
import pathlib
from collections.abc import Iterable

import yaml

__all__ = ["eds_file", "write_endpoints"]

CLUSTER_LOAD_ASSIGNMENT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
_versions = itertools.count(1)


def eds_file(eds_dir: pathlib.Path, service: str) -> pathlib.Path:
    return eds_dir / f"{service}.yaml"


def write_endpoints(
    eds_dir: pathlib.Path, service: str, addresses: Iterable[tuple[str, int]]
) -> pathlib.Path:
    """Publishes the service's replica addresses (host, port) to every watching proxy."""
    endpoints = [
        {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}
        for host, port in addresses
    ]
    document = {
        # Envoy ignores an update whose version it has already seen.
        "version_info": f"{os.getpid()}-{next(_versions)}",
        "resources": [
            {
                "@type": CLUSTER_LOAD_ASSIGNMENT,
                "cluster_name": service,
                "endpoints": [{"lb_endpoints": endpoints}] if endpoints else [],
            }
        ],
    }
    eds_dir.mkdir(parents=True, exist_ok=True)
    target = eds_file(eds_dir, service)
    # The temporary name is hidden from Envoy: it reloads on a move into the
    # directory, and this write is not one.
    scratch = eds_dir / f".{service}.yaml.tmp"
    scratch.write_text(yaml.safe_dump(document, sort_keys=False))
    os.replace(scratch, target)
    return target
