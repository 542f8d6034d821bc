"""The local rollout controller: a new version of one service, gated by the SLO.

    result = Rollout(mesh, "catalog", "v2", policy=rollout.load()).run()

1. The new version's replicas start beside the old ones, each with its own
   sidecar (LocalMesh.start_version), and join every caller's canary cluster.
2. For each step of the policy (shopmesh/rollout.yaml: 5, 20, 50, 100 %), every
   caller's proxy sends that share of the service's calls to the new version (a
   runtime update: no Envoy restarts), and the step is held for one analysis
   window while the new version's calls are measured at its callers
   (shopmesh/local/proxy_stats.py), sampled a few times a second to a second apart.
3. The window passes if, over the whole window, the new version had at least
   `min_requests` calls, an error rate below `max_error_rate` and a p99 below
   `max_p99_ms`. It fails as soon as it has `min_requests` calls that breach a
   threshold, without waiting for the window's end: a breach rolls back at once,
   a pass needs the whole window.
4. A failed window (or a cancelled rollout, or a mesh error) sends every call back
   to the old version at once and then stops the new replicas (they drain). After
   the last step the new version is promoted: it becomes the stable one and the old
   replicas are drained and stopped.

Every sample and step is reported to `report` as it happens (a dict ready for
JSON: the control socket streams them to `shopmesh rollout`), and the Result
holds them all for the final report and its picture.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shopmesh.envoy import routing
from shopmesh.local.mesh import LocalMesh, MeshError
from shopmesh.local.proxy_stats import Figures, Meter, Window
from shopmesh.rollout import Policy

__all__ = ["Result", "Rollout", "Sample", "StepResult", "judge"]

log = logging.getLogger("shopmesh.delivery")

PROMOTED, ROLLED_BACK, NOT_STARTED = "promoted", "rolled back", "not started"
HOLDING, PASSED, FAILED = "holding", "passed", "failed"


@dataclass(frozen=True)
class Sample:
    """The new and the old version's figures in the current window so far."""

    at: float  # seconds since the rollout began
    step: int  # 1-based index into the policy's steps
    percent: int  # the new version's share of calls
    window_at: float  # seconds into the step's window
    new: Figures
    old: Figures
    verdict: str  # holding, passed or failed
    reasons: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sample:
        return cls(**_parsed(data))


@dataclass(frozen=True)
class StepResult:
    step: int
    percent: int
    started: float  # seconds since the rollout began
    ended: float
    new: Figures
    old: Figures
    verdict: str  # passed or failed
    reasons: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepResult:
        return cls(**_parsed(data))


def _parsed(data: dict[str, Any]) -> dict[str, Any]:
    """A Sample's or a StepResult's fields from their JSON."""
    return {
        **data,
        "new": Figures(**data["new"]),
        "old": Figures(**data["old"]),
        "reasons": tuple(data["reasons"]),
    }


@dataclass
class Result:
    service: str
    version: str
    command: list[str]
    policy: Policy
    outcome: str = NOT_STARTED  # promoted, rolled back, not started
    reason: str = ""
    steps: list[StepResult] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    # Seconds since the rollout began: the first call of the new version could be sent,
    # the breach was seen, every caller routed 0 % to it again, its replicas were gone.
    first_traffic_at: float | None = None
    breach_at: float | None = None
    zero_at: float | None = None
    finished_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        policy = data["policy"]
        return cls(
            **{
                **data,
                "policy": Policy(**{**policy, "steps_percent": tuple(policy["steps_percent"])}),
                "steps": [StepResult.from_json(s) for s in data["steps"]],
                "samples": [Sample.from_json(s) for s in data["samples"]],
            }
        )


def judge(new: Figures, policy: Policy, *, complete: bool) -> list[str]:
    """Why the new version's window fails (empty: it holds). Before the window is
    complete, too few calls judge nothing yet; at its end they fail it."""
    if new.requests < policy.min_requests:
        return [f"{new.requests} calls < {policy.min_requests}"] if complete else []
    reasons = []
    if new.error_rate >= policy.max_error_rate:
        reasons.append(f"error rate {new.error_rate:.2%} >= {policy.max_error_rate:.2%}")
    if new.p99_ms is not None and new.p99_ms >= policy.max_p99_ms:
        reasons.append(f"p99 {new.p99_ms:.0f} ms >= {policy.max_p99_ms:.0f} ms")
    return reasons


Report = Callable[[dict[str, Any]], None]


class Rollout:
    """One rollout of `version` of `service` on a running LocalMesh (see the module doc).

    command: what the new replicas run (default: `python -m services <service>`);
    report: gets every event (kind note, sample, step, result) as a JSON-ready dict;
    cancel: set it to roll back and end (the client went away, the runner stops).
    """

    def __init__(
        self,
        mesh: LocalMesh,
        service: str,
        version: str,
        policy: Policy,
        *,
        command: Sequence[str] | None = None,
        cwd: pathlib.Path | None = None,
        report: Report = lambda event: None,
        cancel: threading.Event | None = None,
    ) -> None:
        if service not in mesh.topology.services:
            raise ValueError(f"no such service: {service}")
        self.mesh = mesh
        self.service = service
        self.policy = policy
        self.command = list(command) if command else None
        self.cwd = cwd
        self._report = report
        self.cancel = cancel or threading.Event()
        # Samples a window a dozen times at least, a second apart at most.
        self.sample_every = min(1.0, policy.window_seconds / 12)
        self.result = Result(service, version, self.command or [], policy)
        self._began = 0.0
        self.meter = Meter(self._callers, routing.clusters(service))

    def _callers(self):
        return [(p.name, p.admin) for p in self.mesh.callers(self.service) if p.admin]

    def _now(self) -> float:
        return time.monotonic() - self._began

    def _note(self, text: str) -> None:
        log.info("%s", text)
        self._report({"kind": "note", "at": self._now(), "text": text})

    def run(self) -> Result:
        self._began = time.monotonic()
        result = self.result
        self._report({"kind": "begin", "result": result.to_json()})
        try:
            self._run()
        except Exception as error:  # a mesh error mid-rollout: roll back, say why
            log.exception("rollout of %s %s failed", self.service, result.version)
            if result.outcome == NOT_STARTED and self.service in self.mesh.canaries:
                self._roll_back(f"{type(error).__name__}: {error}")
            elif not result.reason:
                result.reason = f"{type(error).__name__}: {error}"
        result.finished_at = self._now()
        self._report({"kind": "result", "result": result.to_json()})
        return result

    def _run(self) -> None:
        result = self.result
        what = " ".join(self.command) if self.command else "python -m services " + self.service
        self._note(f"starting {self.service} {result.version} beside the stable version: {what}")
        try:
            fresh = self.mesh.start_version(
                self.service, result.version, self.command, cwd=self.cwd
            )
        except MeshError as error:
            result.reason = f"the new version did not start: {error}"
            self._note(result.reason)
            return
        names = ", ".join(r.name for r in fresh)
        self._note(f"{names} SERVING and healthy at every caller; 0 % of calls so far")
        for index, percent in enumerate(self.policy.steps_percent, 1):
            if self.cancel.is_set():  # e.g. the client went away while the replicas started
                self._roll_back("cancelled")
                return
            if result.first_traffic_at is None:  # a proxy may route by it from now on
                result.first_traffic_at = self._now()
            self.mesh.set_canary_weight(self.service, percent)
            self._note(f"step {index}: {percent} % of calls to {result.version}")
            step = self._hold(index, percent)
            result.steps.append(step)
            self._report({"kind": "step", "step": dataclasses.asdict(step)})
            if step.verdict != PASSED:
                self._roll_back("; ".join(step.reasons))
                return
        self._note(f"every step passed: promoting {result.version}, retiring the old replicas")
        self.mesh.promote(self.service)
        result.outcome = PROMOTED
        self._note(f"{self.service} {result.version} serves all calls")

    def _hold(self, index: int, percent: int) -> StepResult:
        window = Window(self.meter)
        started = self._now()
        new_cluster, old_cluster = routing.canary_cluster(self.service), self.service
        while True:
            self.cancel.wait(self.sample_every)
            figures = window.figures()
            elapsed = self._now() - started
            new, old = figures[new_cluster], figures[old_cluster]
            complete = elapsed >= self.policy.window_seconds
            reasons = judge(new, self.policy, complete=complete)
            if self.cancel.is_set():
                reasons = ["cancelled", *reasons]
            verdict = FAILED if reasons else PASSED if complete else HOLDING
            sample = Sample(self._now(), index, percent, elapsed, new, old, verdict, tuple(reasons))
            self.result.samples.append(sample)
            self._report({"kind": "sample", "sample": dataclasses.asdict(sample)})
            if verdict != HOLDING:
                if verdict == FAILED and self.result.breach_at is None:
                    self.result.breach_at = sample.at
                return StepResult(index, percent, started, sample.at, new, old, verdict,
                                  tuple(reasons))  # fmt: skip

    def _roll_back(self, reason: str) -> None:
        result = self.result
        result.outcome, result.reason = ROLLED_BACK, reason
        self._note(f"rolling back: {reason}")
        # Every call to the stable version first, then the new replicas drain and stop.
        self.mesh.set_canary_weight(self.service, 0)
        result.zero_at = self._now()
        self._note(f"0 % of calls to {result.version}; stopping its replicas")
        self.mesh.stop_version(self.service)
        self._note(f"{result.version} stopped; {self.service} {self._stable()} serves all calls")

    def _stable(self) -> str:
        return self.mesh.versions[self.service]
