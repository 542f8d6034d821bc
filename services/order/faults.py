"""Fault knob for crash tests: pause every saga right after one step.

SHOPMESH_ORDER_PAUSE_AFTER=<step>:<seconds>, e.g. `charge:30`, holds each saga
for 30 s once the step's result is saved and before the next step starts
(after `charge`: paid, stock not yet committed), so a test can kill -9 the
process exactly there. The saga keeps its lease while paused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.order.model import Step

__all__ = ["PauseAfter"]

ENV = "SHOPMESH_ORDER_PAUSE_AFTER"


@dataclass(frozen=True)
class PauseAfter:
    step: Step
    seconds: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PauseAfter | None:
        value = env.get(ENV, "")
        if not value:
            return None
        step, _, seconds = value.partition(":")
        # PRICE runs before the order is stored (Orders.place), outside the saga's
        # step loop where the pause happens: a pause after it would never fire.
        pausable = [s for s in Step if s is not Step.PRICE]
        try:
            pause = cls(Step(step.upper()), float(seconds))
        except ValueError:
            pause = None
        if pause is None or pause.step not in pausable:
            steps = ", ".join(s.lower() for s in pausable)
            raise ValueError(f"{ENV} must be <step>:<seconds> with step one of {steps}")
        return pause
