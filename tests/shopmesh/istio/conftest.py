"""Fixtures for the istio/ checks: the rendered overlays, what they run as once Flagger
has initialised their Canaries, and the CRD JSON schemas."""

from __future__ import annotations

import copy
import os
import pathlib

import pytest
import yaml

from shopmesh.istio import checks
from shopmesh.istio.manifests import ISTIO_DIR

from .flagger_view import as_running
from .istio_validation import require_schema_dir

HERE = pathlib.Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every check here renders istio/ with .tools/bin's kustomize: make test runs them
    once it has built the Go tools (see the Makefile's test target)."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.go_tools)


@pytest.fixture(scope="session")
def streams() -> dict[str, str]:
    """overlay -> what `kustomize build` renders of it (.tools/bin's kustomize)."""
    return checks.overlays()


@pytest.fixture(scope="session")
def _rendered(streams: dict[str, str]) -> dict[str, list[dict]]:
    return {name: list(yaml.safe_load_all(stream)) for name, stream in streams.items()}


@pytest.fixture
def rendered(_rendered: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """overlay -> the documents `kubectl apply -k` would apply (a copy, safe to mutate)."""
    return copy.deepcopy(_rendered)


@pytest.fixture(scope="session")
def running(_rendered: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """overlay -> its objects plus Flagger's, delegation resolved (flagger_view)."""
    return {name: as_running(documents) for name, documents in _rendered.items()}


@pytest.fixture(scope="session")
def schema_dir() -> pathlib.Path:
    return require_schema_dir(ISTIO_DIR.parent, os.environ)
