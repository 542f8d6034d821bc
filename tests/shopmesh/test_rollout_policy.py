"""The rollout policy file: what both the local controller and istio/'s Flagger Canaries read."""

from __future__ import annotations

import pathlib

import pytest

from shopmesh import rollout


def test_the_policy_is_the_papers_steps_and_thresholds():
    policy = rollout.load()
    assert policy.steps_percent == (5, 20, 50, 100)
    assert policy.max_error_rate == 0.001
    assert policy.max_p99_ms == 500


@pytest.mark.parametrize(
    ("steps", "complaint"),
    [("[5, 20, 50]", "end at 100"), ("[20, 5, 100]", "increase"), ("[0, 50, 100]", "above 0")],
)
def test_a_policy_whose_steps_do_not_climb_to_100_is_refused(
    tmp_path: pathlib.Path, steps: str, complaint: str
):
    text = rollout.POLICY_FILE.read_text().replace("[5, 20, 50, 100]", steps)
    path = tmp_path / "rollout.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=complaint):
        rollout.load(path)


def test_a_shorter_window_keeps_the_thresholds():
    short = rollout.load().with_window(5, min_requests=20)
    assert (short.window_seconds, short.min_requests) == (5, 20)
    assert short.max_p99_ms == rollout.load().max_p99_ms


@pytest.mark.parametrize(("seconds", "min_requests"), [(0, None), (-1, None), (5, 0), (5, -3)])
def test_a_shorter_window_is_held_to_the_policy_files_rules(seconds, min_requests):
    # A window of no calls would pass every step: a version nobody called, promoted.
    with pytest.raises(ValueError, match="must be positive"):
        rollout.load().with_window(seconds, min_requests)
