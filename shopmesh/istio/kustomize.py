"""Resolve a kustomization the way `kubectl apply -k` does, for the features istio/ uses.

There is no kustomize binary here, so tests render overlays with this loader.
It supports exactly:
- `resources`: files (multi-document YAML) and directories with a kustomization;
- `patches` with `path:` only (strategic merge patches, target taken from the
  patch's apiVersion/kind/name/namespace). Maps merge, `null` deletes a key. On
  custom resources (Istio's, CloudNativePG's: no merge keys) lists are replaced,
  as kustomize does. On
  built-in kinds the named lists `containers`, `initContainers`, `env`, `volumes`
  merge by `name`; any other list in such a patch is refused rather than guessed;
- `images`: `name` -> `newName` / `newTag` / `digest` on container images.
Any other field of a kustomization, or a `$patch` directive, raises
UnsupportedKustomization, so the loader never silently renders something else.
"""

from __future__ import annotations

import copy
import pathlib
from typing import Any

import yaml

__all__ = ["UnsupportedKustomization", "build", "resource_id"]

SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "patches", "images"}
MERGED_BY_NAME = {"containers", "initContainers", "env", "volumes"}
# Built-in API groups are "" (core), single words (apps, batch, policy, ...) or end
# in .k8s.io; a CRD's group is a domain of its own (networking.istio.io, ...).
BUILT_IN_GROUP_SUFFIX = ".k8s.io"
Document = dict[str, Any]


class UnsupportedKustomization(ValueError):
    """The kustomization uses something this loader does not implement."""


def resource_id(document: Document) -> tuple[str, str, str, str]:
    metadata = document.get("metadata") or {}
    return (
        document.get("apiVersion", ""),
        document.get("kind", ""),
        metadata.get("namespace", ""),
        metadata.get("name", ""),
    )


def _documents(path: pathlib.Path) -> list[Document]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _is_crd(document: Document) -> bool:
    group = document.get("apiVersion", "").rpartition("/")[0]
    return "." in group and not group.endswith(BUILT_IN_GROUP_SUFFIX)


def _merge(target: Any, patch: Any, crd: bool, where: str) -> Any:
    if not isinstance(patch, dict) or not isinstance(target, dict):
        return copy.deepcopy(patch)
    merged = dict(target)
    for key, value in patch.items():
        if key.startswith("$patch") or key.startswith("$setElementOrder"):
            raise UnsupportedKustomization(f"{where}: directive {key} is not supported")
        path = f"{where}.{key}"
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, list) and not crd:
            merged[key] = _merge_list(merged.get(key) or [], value, key, path)
        elif key in merged:
            merged[key] = _merge(merged[key], value, crd, path)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _merge_list(target: list, patch: list, key: str, where: str) -> list:
    if key not in MERGED_BY_NAME:
        raise UnsupportedKustomization(
            f"{where}: patching the list {key!r} of a built-in kind is not supported"
        )
    merged = [copy.deepcopy(item) for item in target]
    index = {item["name"]: i for i, item in enumerate(merged)}
    for item in patch:
        if item["name"] in index:
            i = index[item["name"]]
            merged[i] = _merge(merged[i], item, False, f"{where}[{item['name']}]")
        else:
            merged.append(copy.deepcopy(item))
    return merged


def _apply_patch(documents: list[Document], patch: Document, source: pathlib.Path) -> None:
    wanted = resource_id(patch)
    matches = [i for i, d in enumerate(documents) if resource_id(d) == wanted]
    if len(matches) != 1:
        raise ValueError(f"{source}: patch target {wanted} matches {len(matches)} resources")
    i = matches[0]
    documents[i] = _merge(documents[i], patch, _is_crd(patch), f"{source.name}:{wanted[1]}")


def _split_image(image: str) -> tuple[str, str]:
    """("name", suffix) where suffix is ":tag", "@digest" or ""."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, f"@{digest}"
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""


def _set_images(documents: list[Document], rule: dict[str, str]) -> None:
    unknown = set(rule) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise UnsupportedKustomization(f"images: fields {sorted(unknown)} are not supported")
    for document in documents:
        pod = (document.get("spec") or {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            name, suffix = _split_image(container["image"])
            if name != rule["name"]:
                continue
            if "digest" in rule:
                suffix = f"@{rule['digest']}"
            elif "newTag" in rule:
                suffix = f":{rule['newTag']}"
            container["image"] = rule.get("newName", name) + suffix


def build(directory: pathlib.Path) -> list[Document]:
    """The resources `kubectl apply -k directory` would apply, in file order."""
    kustomization = _documents(directory / "kustomization.yaml")[0]
    unsupported = set(kustomization) - SUPPORTED_FIELDS
    if unsupported:
        raise UnsupportedKustomization(f"{directory}: fields {sorted(unsupported)} not supported")
    documents: list[Document] = []
    for entry in kustomization.get("resources") or []:
        path = directory / entry
        documents += build(path) if path.is_dir() else _documents(path)
    for patch in kustomization.get("patches") or []:
        if set(patch) != {"path"}:
            raise UnsupportedKustomization(f"{directory}: only `patches: - path:` is supported")
        source = directory / patch["path"]
        for document in _documents(source):
            _apply_patch(documents, document, source)
    for rule in kustomization.get("images") or []:
        _set_images(documents, rule)
    seen: set[tuple[str, str, str, str]] = set()
    for document in documents:
        if resource_id(document) in seen:
            raise ValueError(f"{directory}: resource {resource_id(document)} defined twice")
        seen.add(resource_id(document))
    return documents
