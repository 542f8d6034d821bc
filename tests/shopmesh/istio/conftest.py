"""Fixtures for the istio/ checks: the rendered overlays and the CRD JSON schemas."""

from __future__ import annotations

import copy
import os
import pathlib

import pytest

from shopmesh.istio import kustomize
from shopmesh.istio.manifests import ISTIO_DIR

from .istio_validation import require_schema_dir

# Every kustomization a platform team may apply; each is checked whole.
OVERLAYS = ("base", "overlays/canary")


@pytest.fixture(scope="session")
def _rendered() -> dict[str, list[dict]]:
    return {name: kustomize.build(ISTIO_DIR / name) for name in OVERLAYS}


@pytest.fixture
def rendered(_rendered: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """overlay -> the documents `kubectl apply -k` would apply (a copy, safe to mutate)."""
    return copy.deepcopy(_rendered)


@pytest.fixture(scope="session")
def schema_dir() -> pathlib.Path:
    return require_schema_dir(ISTIO_DIR.parent, os.environ)
