"""The rollout policy (shopmesh/rollout.yaml): steps, analysis window and thresholds.

Read by the local rollout controller and by the generator of istio/'s Flagger
Canary resources, so a release is judged by the same numbers everywhere.
"""

from __future__ import annotations

import functools
import itertools
import pathlib
from dataclasses import dataclass, replace

import yaml

from mesh.status import SERVER_FAULTS

__all__ = ["FAILED_CALL_CODES", "Policy", "load"]

POLICY_FILE = pathlib.Path(__file__).with_name("rollout.yaml")

# The statuses of a release's failed calls, the ones its error rate counts: the server's
# faults, which gRPC's HTTP mapping makes 5xx. Envoy counts exactly these as an upstream
# host's rq_error, what the local rollout reads at the callers' proxies (local/proxy_stats.py);
# istio/'s Flagger check counts them by number in grpc_response_status (istio/flagger.py).
# Wider than the breakers' UNHEALTHY_CODES: a release that drops a method its callers use
# (UNIMPLEMENTED) or loses data has failed, though neither says a server is overloaded.
# A caller's own mistake (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ...) is not one.
FAILED_CALL_CODES = SERVER_FAULTS


@dataclass(frozen=True)
class Policy:
    # Percent of traffic on the new version at each step, increasing, ending at 100.
    steps_percent: tuple[int, ...]
    window_seconds: float
    # Fewer of the new version's calls than this in a window judge nothing: the step fails.
    min_requests: int
    # A window passes only while errors / calls < max_error_rate and p99 < max_p99_ms.
    max_error_rate: float
    max_p99_ms: float

    def __post_init__(self) -> None:
        # Here rather than in the file's parser: a shorter window (with_window, what
        # `shopmesh rollout --window` asks for) is held to the same rules.
        steps = self.steps_percent
        if not steps or steps[-1] != 100 or any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError(f"steps_percent must increase and end at 100, not {list(steps)}")
        if steps[0] <= 0:
            raise ValueError(f"steps_percent must start above 0, not {steps[0]}")
        if self.window_seconds <= 0 or self.min_requests < 1:
            raise ValueError("analysis.window_seconds and analysis.min_requests must be positive")
        if not 0 < self.max_error_rate < 1 or self.max_p99_ms <= 0:
            raise ValueError("analysis.max_error_rate must be in (0, 1) and max_p99_ms positive")

    def with_window(self, seconds: float, min_requests: int | None = None) -> Policy:
        """The same thresholds over a shorter window (tests, demos)."""
        return replace(
            self,
            window_seconds=seconds,
            min_requests=self.min_requests if min_requests is None else min_requests,
        )


def _parse(document: dict) -> Policy:
    analysis = document["analysis"]
    return Policy(
        steps_percent=tuple(int(step) for step in document["steps_percent"]),
        window_seconds=float(analysis["window_seconds"]),
        min_requests=int(analysis["min_requests"]),
        max_error_rate=float(analysis["max_error_rate"]),
        max_p99_ms=float(analysis["max_p99_ms"]),
    )


@functools.cache
def load(path: pathlib.Path = POLICY_FILE) -> Policy:
    return _parse(yaml.safe_load(path.read_text()))
