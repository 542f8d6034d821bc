"""Strict validation of rendered manifests: Istio JSON schemas, typed models, Kubernetes.

Each check returns a list of problems (empty when the document is valid), so the
same functions serve the tests of istio/ and the mutation tests that prove they
catch broken copies.
"""

from __future__ import annotations

import functools
import importlib
import json
import pathlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import kubernetes_validate
import pydantic
import pytest

__all__ = [
    "KUBERNETES_VERSION",
    "is_istio",
    "kubernetes_problems",
    "model_problems",
    "require_schema_dir",
    "schema_problems",
]

# A release kubernetes-validate ships schemas for and that current Istio supports;
# it has the preStop `sleep` action the Deployments use (1.29+).
KUBERNETES_VERSION = "1.32"
TOP_LEVEL_KEYS = {"apiVersion", "kind", "metadata", "spec"}
# The one CEL rule of the schemas the checks evaluate themselves (jsonschema does
# not run x-kubernetes-validations); the others concern fields istio/ does not use.
DURATION_RULE = "duration(self) >= duration('1ms')"
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def require_schema_dir(repo_root: pathlib.Path, env: Mapping[str, str]) -> pathlib.Path:
    """../shared/schemas/istio beside the repo; skip without it, but fail in CI."""
    path = repo_root.parent / "shared" / "schemas" / "istio"
    if path.is_dir():
        return path
    reason = f"Istio JSON schemas not found at {path} (../shared/schemas/istio)"
    if env.get("CI") == "true":
        pytest.fail(f"{reason}: CI must have ../shared beside the checkout", pytrace=False)
    pytest.skip(reason)


def is_istio(document: dict[str, Any]) -> bool:
    return document["apiVersion"].split("/")[0].endswith(".istio.io")


def _name(document: dict[str, Any]) -> str:
    metadata = document.get("metadata") or {}
    return f"{document.get('kind')} {metadata.get('namespace', '')}/{metadata.get('name')}"


@functools.cache
def _validator(schema_file: pathlib.Path) -> jsonschema.Draft7Validator:
    schema = json.loads(schema_file.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _go_duration_seconds(value: Any) -> float | None:
    if not isinstance(value, str) or not value or _GO_DURATION.sub("", value):
        return None
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _GO_DURATION.findall(value))


def _duration_problems(schema: dict[str, Any], value: Any, where: str) -> Iterator[str]:
    rules = {rule.get("rule") for rule in schema.get("x-kubernetes-validations", [])}
    if DURATION_RULE in rules:
        seconds = _go_duration_seconds(value)
        if seconds is None or seconds < 0.001:
            yield f"{where}: {value!r} is not a duration of at least 1ms"
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub:
                yield from _duration_problems(sub, item, f"{where}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from _duration_problems(schema["items"], item, f"{where}[{i}]")


def schema_problems(document: dict[str, Any], schema_dir: pathlib.Path) -> list[str]:
    """Draft 7 validation against ../shared/schemas/istio/<group>/<kind>_<version>.json."""
    group, version = document["apiVersion"].split("/")
    schema_file = schema_dir / group / f"{document['kind'].lower()}_{version}.json"
    if not schema_file.exists():
        return [f"{_name(document)}: no schema {schema_file.name} for {document['apiVersion']}"]
    validator = _validator(schema_file)
    problems = [
        f"{_name(document)}: {'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]
    # The CRD schemas leave the top level open (apiVersion, kind, metadata).
    problems += [
        f"{_name(document)}: unknown top-level key {key!r}"
        for key in document
        if key not in TOP_LEVEL_KEYS
    ]
    problems += list(_duration_problems(validator.schema, document, _name(document)))
    return problems


def _differences(given: Any, kept: Any, where: str) -> Iterator[str]:
    if isinstance(given, dict) and isinstance(kept, dict):
        for key, value in given.items():
            if key not in kept:
                yield f"{where}.{key}: dropped by the typed model (unknown field)"
            else:
                yield from _differences(value, kept[key], f"{where}.{key}")
    elif isinstance(given, list) and isinstance(kept, list) and len(given) == len(kept):
        for i, (a, b) in enumerate(zip(given, kept, strict=True)):
            yield from _differences(a, b, f"{where}[{i}]")
    elif given != kept:
        yield f"{where}: {given!r} became {kept!r} in the typed model"


def model_problems(document: dict[str, Any]) -> list[str]:
    """Parse with cloudcoil's typed Istio models; nothing may be dropped or changed."""
    group, version = document["apiVersion"].split("/")
    module = importlib.import_module(f"cloudcoil.models.istio.{group.split('.')[0]}.{version}")
    model = getattr(module, document["kind"], None)
    if model is None:
        return [f"{_name(document)}: no typed model for {document['apiVersion']}"]
    try:
        parsed = model.model_validate(document)
    except pydantic.ValidationError as error:
        return [f"{_name(document)}: {line}" for line in str(error).splitlines()[1:]]
    kept = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return list(_differences(document, kept, _name(document)))


def kubernetes_problems(document: dict[str, Any]) -> list[str]:
    """The library check behind `kubernetes-validate --strict` (unknown fields rejected)."""
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(map(str, error.absolute_path)) or "<root>"
        return [f"{_name(document)}: {where}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"{_name(document)}: {error.message}"]
    return []
