"""`shopmesh canary`: the plan's weights, printed or written into the canary overlay."""

from __future__ import annotations

import shutil

import pytest
import yaml

from mesh import contracts
from shopmesh import cli
from shopmesh.istio import canary, checks, manifests

from .istio_consistency import canary_problems, find


def _splits(documents: list[dict]) -> set[tuple[int, ...]]:
    return {
        tuple(d["weight"] for d in route["route"])
        for vs in find(documents, "VirtualService")
        for route in vs["spec"]["http"]
    }


def test_plan_goes_from_all_v1_to_all_v2() -> None:
    assert canary.PLAN == ((100, 0), (95, 5), (80, 20), (50, 50), (0, 100))
    assert all(v1 + v2 == 100 for v1, v2 in canary.PLAN)


def test_step_prints_virtual_services_with_its_weights(capsys) -> None:
    assert cli.main(["canary", "--step", "3"]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert len(documents) == len(contracts.services()) + 1  # + the gateway's
    assert _splits(documents) == {(50, 50)}


def test_step_outside_the_plan_is_refused(capsys) -> None:
    assert cli.main(["canary", "--step", str(len(canary.PLAN))]) == 2
    assert "canary step must be 0..4" in capsys.readouterr().err


def test_write_moves_the_overlay_to_the_step(tmp_path, monkeypatch, capsys) -> None:
    istio = tmp_path / "istio"
    shutil.copytree(manifests.ISTIO_DIR, istio)
    monkeypatch.setattr(manifests, "ISTIO_DIR", istio)
    assert cli.main(["canary", "--step", "2", "--write"]) == 0
    assert "v1 80% / v2 20%" in capsys.readouterr().out
    assert manifests.committed_canary_step(istio) == 2
    assert manifests.check(istio) == []
    documents = list(yaml.safe_load_all(checks.build(istio / "overlays/canary")))
    assert _splits(documents) == {(80, 20)}
    assert canary_problems(documents, canary.PLAN) == []


@pytest.mark.parametrize("step", range(len(canary.PLAN)))
def test_every_step_renders_weights_that_sum_to_100(step: int) -> None:
    documents = canary.virtual_service_weights(step)
    assert _splits(documents) == {canary.PLAN[step]}
    assert canary.step_of(documents) == step
