"""Envoy config fragments from fragments/*.yaml (package data), with placeholders filled in.

The fragments stay in Envoy's own YAML shape so they read like Envoy's docs;
Python only supplies what the topology and the contracts decide. A placeholder
is `${name}`:
- a value that is exactly "${name}" is replaced by the Python value, whatever
  its type (a list of routes, a port number, a nested fragment); `None` drops
  the key, so an optional block (a retry policy) simply disappears;
- "${name}" inside a longer string is replaced by str(value).
Every placeholder must be given and every given value used, so a template and
its caller cannot drift apart silently.
"""

from __future__ import annotations

import functools
import pathlib
import re
import string
from typing import Any

import yaml

__all__ = ["FRAGMENTS_DIR", "fill"]

# Package data beside this module, so an installed wheel renders the same configs
# as a checkout.
FRAGMENTS_DIR = pathlib.Path(__file__).resolve().parent / "fragments"
_WHOLE = re.compile(r"^\$\{([a-z_][a-z0-9_]*)\}$")
_DROP = object()


@functools.cache
def _load(name: str) -> Any:
    path = FRAGMENTS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no Envoy template {path}")
    return yaml.safe_load(path.read_text())


def _substitute(node: Any, values: dict[str, Any], used: set[str]) -> Any:
    if isinstance(node, dict):
        filled = {key: _substitute(value, values, used) for key, value in node.items()}
        return {key: value for key, value in filled.items() if value is not _DROP}
    if isinstance(node, list):
        return [item for item in (_substitute(i, values, used) for i in node) if item is not _DROP]
    if not isinstance(node, str) or "${" not in node:
        return node
    if whole := _WHOLE.match(node):
        key = whole.group(1)
        used.add(key)
        value = values[key]
        return _DROP if value is None else value
    template = string.Template(node)
    used.update(template.get_identifiers())
    return template.substitute(values)


def fill(template: str, /, **values: Any) -> Any:
    """The template fragments/<template>.yaml with `values` in its placeholders."""
    used: set[str] = set()
    try:
        result = _substitute(_load(template), values, used)
    except KeyError as missing:
        raise KeyError(f"fragments/{template}.yaml needs a value for {missing}") from None
    if unused := set(values) - used:
        raise TypeError(f"fragments/{template}.yaml has no placeholder for {sorted(unused)}")
    return result
