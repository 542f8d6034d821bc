"""The order service's environment knobs."""

from __future__ import annotations

import pytest

from services.order.faults import PauseAfter
from services.order.model import Step
from services.order.settings import OrderSettings


def test_defaults():
    settings = OrderSettings.from_env({})
    assert (settings.lease_seconds, settings.recovery_seconds, settings.pause_after) == (
        10.0,
        2.0,
        None,
    )


def test_pause_knob_names_a_step_and_seconds():
    env = {"SHOPMESH_ORDER_PAUSE_AFTER": "charge:30", "SHOPMESH_ORDER_LEASE_SECONDS": "1.5"}
    settings = OrderSettings.from_env(env)
    assert settings.pause_after == PauseAfter(Step.CHARGE, 30.0)
    assert settings.lease_seconds == 1.5


@pytest.mark.parametrize(
    "env",
    [
        {"SHOPMESH_ORDER_PAUSE_AFTER": "checkout:3"},
        {"SHOPMESH_ORDER_PAUSE_AFTER": "charge:soon"},
        # Pricing runs before the order is stored, outside the steps a pause follows.
        {"SHOPMESH_ORDER_PAUSE_AFTER": "price:3"},
        {"SHOPMESH_ORDER_LEASE_SECONDS": "0"},
        {"SHOPMESH_ORDER_RECOVERY_SECONDS": "often"},
    ],
)
def test_bad_values_are_refused_at_startup(env):
    with pytest.raises(ValueError, match="SHOPMESH_ORDER_"):
        OrderSettings.from_env(env)
