"""`shopmesh rollout`'s arguments, and what it says when no mesh runs."""

import pytest

from shopmesh.cli import main as shopmesh
from shopmesh.commands.rollout import target


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v2", ("v2", None)),
        ("2026.12-hotfix", ("2026.12-hotfix", None)),
        (
            "python tests/shopmesh/delivery/faulty_service.py catalog --fail 0.3",
            (
                None,
                ["python", "tests/shopmesh/delivery/faulty_service.py", "catalog", "--fail", "0.3"],
            ),
        ),
        ("./catalog-v3", (None, ["./catalog-v3"])),
    ],
)
def test_to_is_a_version_name_or_a_command(text, expected):
    assert target(text) == expected


def test_without_a_running_mesh_it_says_so(tmp_path, capsys):
    assert shopmesh(["rollout", "catalog", "--to", "v2", "--run-dir", str(tmp_path)]) == 1
    assert "is `shopmesh up` running?" in capsys.readouterr().err


def test_min_requests_goes_with_a_window(tmp_path, capsys):
    argv = ["rollout", "catalog", "--to", "v2", "--run-dir", str(tmp_path), "--min-requests", "5"]
    assert shopmesh(argv) == 2
    assert "--min-requests goes with --window" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (["--window", "5", "--min-requests", "0"], "--min-requests must be at least 1"),
        (["--window", "0"], "--window must be positive"),
        (["--window", "-5", "--min-requests", "3"], "--window must be positive"),
    ],
)
def test_a_window_that_could_judge_nothing_is_refused_before_anything_starts(
    tmp_path, capsys, options, complaint
):
    argv = ["rollout", "catalog", "--to", "v2", "--run-dir", str(tmp_path), *options]
    assert shopmesh(argv) == 2
    assert complaint in capsys.readouterr().err
