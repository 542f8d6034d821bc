"""Strict validation of rendered manifests: CRD JSON schemas, typed models, Kubernetes.

Custom resources (Istio's, CloudNativePG's, Flagger's, the Prometheus Operator's)
validate against the JSON schemas in ../shared/schemas/<family> (Draft 7) and the
CEL rules those schemas carry
(x-kubernetes-validations, evaluated with cel-python as the API server would on
create); built-in kinds through kubernetes-validate. Each check returns a list of
problems (empty when the document is valid), so the same functions serve the
tests of istio/ and the mutation tests that prove they catch broken copies.
"""

from __future__ import annotations

import functools
import importlib
import json
import pathlib
from collections.abc import Iterator, Mapping
from typing import Any

import celpy
import jsonschema
import kubernetes_validate
import pydantic
import pytest

__all__ = [
    "KUBERNETES_VERSION",
    "is_custom_resource",
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
# ../shared/schemas/<family> per API group of the CRDs istio/ uses; Istio's groups
# (*.istio.io) are folders of istio/.
FAMILIES = {
    "postgresql.cnpg.io": "cnpg",
    "flagger.app": "flagger",
    "monitoring.coreos.com": "prometheus-operator",
}
SCHEMA_FAMILIES = ("istio", *FAMILIES.values())


def require_schema_dir(repo_root: pathlib.Path, env: Mapping[str, str]) -> pathlib.Path:
    """../shared/schemas beside the repo (a folder per family); skip without it, but fail in CI."""
    path = repo_root.parent / "shared" / "schemas"
    missing = [family for family in SCHEMA_FAMILIES if not (path / family).is_dir()]
    if not missing:
        return path
    reason = f"CRD JSON schemas not found at {path} ({', '.join(missing)}; ../shared/schemas)"
    if env.get("CI") == "true":
        pytest.fail(f"{reason}: CI must have ../shared beside the checkout", pytrace=False)
    pytest.skip(reason)


def _group(document: dict[str, Any]) -> str:
    return document["apiVersion"].rpartition("/")[0]


def is_istio(document: dict[str, Any]) -> bool:
    return _group(document).endswith(".istio.io")


def is_custom_resource(document: dict[str, Any]) -> bool:
    """A kind that a CRD defines (validated by schema_problems, not by kubernetes_problems)."""
    return is_istio(document) or _group(document) in FAMILIES


def _name(document: dict[str, Any]) -> str:
    metadata = document.get("metadata") or {}
    return f"{document.get('kind')} {metadata.get('namespace', '')}/{metadata.get('name')}"


def _schema_file(schema_dir: pathlib.Path, document: dict[str, Any]) -> pathlib.Path:
    group, _, version = document["apiVersion"].rpartition("/")
    kind = document["kind"].lower()
    if is_istio(document):
        return schema_dir / "istio" / group / f"{kind}_{version}.json"
    return schema_dir / FAMILIES[group] / f"{kind}_{version}.json"


@functools.cache
def _validator(schema_file: pathlib.Path) -> jsonschema.Draft7Validator:
    schema = json.loads(schema_file.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@functools.cache
def _program(rule: str) -> celpy.Runner:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


def _rule_holds(rule: str, value: Any) -> bool:
    try:
        result = _program(rule).evaluate({"self": celpy.json_to_cel(value)})
    except celpy.CELEvalError:
        return False  # an error in a rule rejects the object, as the API server does
    return result is True or (isinstance(result, celpy.celtypes.BoolType) and bool(result))


def _rule_problems(schema: dict[str, Any], value: Any, where: str) -> Iterator[str]:
    """The schema's CEL rules on every value present. Transition rules (they read
    `oldSelf`) only apply to updates, and the manifests are created."""
    for validation in schema.get("x-kubernetes-validations", []):
        rule = validation["rule"]
        if "oldSelf" not in rule and not _rule_holds(rule, value):
            shown = "" if isinstance(value, dict | list) else f" ({value!r})"
            yield f"{where}: {validation.get('message', rule)}{shown}"
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub:
                yield from _rule_problems(sub, item, f"{where}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from _rule_problems(schema["items"], item, f"{where}[{i}]")


def schema_problems(document: dict[str, Any], schema_dir: pathlib.Path) -> list[str]:
    """Draft 7 validation and CEL rules of the kind's schema in ../shared/schemas."""
    schema_file = _schema_file(schema_dir, document)
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
    problems += list(_rule_problems(validator.schema, document, _name(document)))
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
