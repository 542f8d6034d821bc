"""Routing by version: how every caller's proxy splits a service's calls between its
stable replicas and a new version's, and how the split moves without a restart.

Each service is two clusters in every proxy that calls it, the shape Flagger
gives a canary (primary and canary) and Istio's subsets by version:

- `<service>`: the stable version's replicas (discovery file eds/<service>.yaml);
- `<service>-canary`: a new version's replicas while it is rolled out
  (eds/<service>-canary.yaml), empty otherwise.

Every route to the service names both in `weighted_clusters`, with defaults
100 and 0 and `runtime_key_prefix: routing.<service>`: Envoy reads each
cluster's weight per request from the runtime key `routing.<service>.<cluster>`.
The keys come from a disk layer all proxies share, runtime/current (a symbolic
link to one tree of files, one file per key). `write_weights` writes a whole new
tree and swaps the link by a rename, which Envoy watches for: every proxy moves
to the new split at once, none reads half a tree, and a proxy the supervisor
restarts reads the split in force rather than a default (an admin-API layer
would forget it).

Because each version is a cluster of its own, every caller's proxy also counts
each version's calls apart (cluster.<service>-canary.upstream_rq_*, its
upstream_rq_time histogram): the new version is judged by what its callers
saw, as Flagger judges it by istio_requests_total for the canary's workload.
"""

from __future__ import annotations

import itertools
import os
import pathlib
import shutil
from collections.abc import Mapping
from typing import Any

__all__ = [
    "CANARY_SUFFIX",
    "RUNTIME_SUBDIRECTORY",
    "canary_cluster",
    "clusters",
    "disk_layer",
    "read_weights",
    "weighted_clusters",
    "write_weights",
]

CANARY_SUFFIX = "-canary"
# The runtime tree's subdirectory Envoy reads (the layer's `subdirectory`).
RUNTIME_SUBDIRECTORY = "envoy"
KEY_PREFIX = "routing"
CURRENT = "current"
_trees = itertools.count(1)


def canary_cluster(service: str) -> str:
    return f"{service}{CANARY_SUFFIX}"


def clusters(service: str) -> tuple[str, str]:
    """The service's clusters in every caller's proxy: stable, then canary."""
    return service, canary_cluster(service)


def runtime_key(service: str, cluster: str) -> str:
    return f"{KEY_PREFIX}.{service}.{cluster}"


def weighted_clusters(service: str) -> dict[str, Any]:
    """A route's `weighted_clusters`: all to the stable version unless the runtime says so."""
    stable, canary = clusters(service)
    return {
        "runtime_key_prefix": f"{KEY_PREFIX}.{service}",
        "clusters": [{"name": stable, "weight": 100}, {"name": canary, "weight": 0}],
    }


def disk_layer(runtime_dir: pathlib.Path) -> dict[str, Any]:
    """The bootstrap's runtime layer holding the weights (see the module's docstring)."""
    return {
        "name": "routing",
        "disk_layer": {
            "symlink_root": str(runtime_dir / CURRENT),
            "subdirectory": RUNTIME_SUBDIRECTORY,
        },
    }


def _weights_tree(root: pathlib.Path, canary_percent: Mapping[str, int]) -> None:
    (root / RUNTIME_SUBDIRECTORY).mkdir(parents=True)  # also with no key: never a dangling link
    for service, percent in canary_percent.items():
        if not 0 <= percent <= 100:
            raise ValueError(f"{service}: a canary weight is a percentage, not {percent}")
        stable, canary = clusters(service)
        directory = root / RUNTIME_SUBDIRECTORY / KEY_PREFIX / service
        directory.mkdir(parents=True)
        (directory / stable).write_text(f"{100 - percent}\n")
        (directory / canary).write_text(f"{percent}\n")


def write_weights(runtime_dir: pathlib.Path, canary_percent: Mapping[str, int]) -> pathlib.Path:
    """Publishes each service's share (percent) of calls for its canary cluster to every
    proxy; a service left out goes wholly to its stable cluster. Returns the new tree."""
    runtime_dir.mkdir(parents=True, exist_ok=True)
    name = f"tree-{os.getpid()}-{next(_trees)}"
    tree = runtime_dir / name
    _weights_tree(tree, canary_percent)
    link = runtime_dir / CURRENT
    previous = link.resolve() if link.is_symlink() else None
    scratch = runtime_dir / f".{CURRENT}.tmp"
    scratch.unlink(missing_ok=True)
    scratch.symlink_to(name)
    os.replace(scratch, link)
    # The tree before the previous one is read by nobody now: keep two at most.
    for old in runtime_dir.glob("tree-*"):
        if old not in (tree, previous):
            shutil.rmtree(old, ignore_errors=True)
    return tree


def read_weights(runtime_dir: pathlib.Path) -> dict[str, int]:
    """Each service's canary share in the tree in force (services at 0 % are left out)."""
    root = runtime_dir / CURRENT / RUNTIME_SUBDIRECTORY / KEY_PREFIX
    if not root.is_dir():
        return {}
    weights = {}
    for directory in sorted(root.iterdir()):
        percent = int((directory / canary_cluster(directory.name)).read_text())
        if percent:
            weights[directory.name] = percent
    return weights
