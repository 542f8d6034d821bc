"""Every manifest of istio/ parses, is up to date, and validates strictly."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
import yaml

from shopmesh.istio import manifests
from shopmesh.istio.manifests import ISTIO_DIR

from .istio_validation import (
    KUBERNETES_VERSION,
    is_custom_resource,
    is_istio,
    kubernetes_problems,
    model_problems,
    require_schema_dir,
    schema_problems,
)


def test_every_yaml_file_parses_into_named_objects() -> None:
    files = sorted(ISTIO_DIR.rglob("*.yaml"))
    assert len(files) > 40
    for path in files:
        for document in yaml.safe_load_all(path.read_text()):
            assert document["apiVersion"] and document["kind"], path
            if document["kind"] != "Kustomization":
                assert document["metadata"]["name"], path


def test_generated_files_match_their_sources() -> None:
    assert manifests.check() == [], "run `make gen` and commit istio/"


def test_drift_is_detected(tmp_path: pathlib.Path) -> None:
    manifests.write(tmp_path)
    assert manifests.check(tmp_path) == []
    service = tmp_path / "base/catalog/service.yaml"
    service.write_text(service.read_text().replace("50051", "50052"))
    (tmp_path / "base/leftover.yaml").write_text("kind: ConfigMap\n")
    assert manifests.check(tmp_path) == ["base/catalog/service.yaml", "base/leftover.yaml"]


def test_custom_resources_match_the_json_schemas_and_their_rules(rendered, schema_dir) -> None:
    for overlay, documents in rendered.items():
        custom = [d for d in documents if is_custom_resource(d)]
        assert len([d for d in custom if is_istio(d)]) >= 15, overlay
        cnpg = {d["kind"] for d in custom if d["apiVersion"] == "postgresql.cnpg.io/v1"}
        assert cnpg == {"Cluster", "Database", "ScheduledBackup"}, overlay
        progressive = {d["kind"] for d in custom if not is_istio(d)} - cnpg
        assert progressive == (
            {"Canary", "MetricTemplate", "PodMonitor"} if "progressive" in overlay else set()
        ), overlay
        problems = [p for d in custom for p in schema_problems(d, schema_dir)]
        assert problems == [], overlay


def test_istio_resources_parse_into_typed_models_without_losing_keys(rendered) -> None:
    for overlay, documents in rendered.items():
        problems = [p for d in documents if is_istio(d) for p in model_problems(d)]
        assert problems == [], overlay


def test_kubernetes_objects_pass_strict_validation(rendered) -> None:
    for overlay, documents in rendered.items():
        kubernetes = [d for d in documents if not is_custom_resource(d)]
        kinds = {d["kind"] for d in kubernetes}
        assert {"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds, overlay
        problems = [p for d in kubernetes for p in kubernetes_problems(d)]
        assert problems == [], overlay


def test_kubernetes_validate_command_accepts_the_progressive_delivery_overlay(
    rendered, tmp_path
) -> None:
    """The same check through the command a platform team would run in their CI."""
    stream = tmp_path / "kubernetes.yaml"
    documents = [d for d in rendered["overlays/progressive-delivery"] if not is_custom_resource(d)]
    stream.write_text(yaml.safe_dump_all(documents))
    command = [str(pathlib.Path(sys.executable).parent / "kubernetes-validate"), "--strict"]
    result = subprocess.run(
        [*command, "--quiet", "--kubernetes-version", KUBERNETES_VERSION, str(stream)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_schemas_skip_locally_but_fail_in_ci(tmp_path: pathlib.Path) -> None:
    checkout = tmp_path / "main"
    with pytest.raises(pytest.skip.Exception, match="schemas not found"):
        require_schema_dir(checkout, {})
    with pytest.raises(pytest.fail.Exception, match=r"CI must have \.\./shared"):
        require_schema_dir(checkout, {"CI": "true"})
    (tmp_path / "shared/schemas/istio").mkdir(parents=True)
    (tmp_path / "shared/schemas/cnpg").mkdir(parents=True)
    with pytest.raises(pytest.fail.Exception, match="flagger, prometheus-operator"):
        require_schema_dir(checkout, {"CI": "true"})
    (tmp_path / "shared/schemas/flagger").mkdir(parents=True)
    (tmp_path / "shared/schemas/prometheus-operator").mkdir(parents=True)
    assert require_schema_dir(checkout, {"CI": "true"}) == tmp_path / "shared/schemas"
