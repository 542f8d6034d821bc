"""A chaos scenario's result: what the shoppers saw per phase, the figures, the checks, the
invariant violations, and whether the run passed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from shopmesh.chaos.invariants import Violation
from shopmesh.chaos.timeline import SUMMARY_HEADERS
from shopmesh.load.stats import table

__all__ = ["Check", "Report"]


@dataclass(frozen=True)
class Check:
    """A scenario-specific expectation, e.g. "checkout p99 < 50 ms while the breaker is open"."""

    name: str
    passed: bool
    detail: str


@dataclass
class Report:
    scenario: str
    phases: list[list[object]] = field(default_factory=list)
    phase_spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    overall: list[object] | None = None
    figures: dict[str, str] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    order_statuses: Counter = field(default_factory=Counter)

    def check(self, name: str, passed: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(passed), detail))
        return bool(passed)

    @property
    def passed(self) -> bool:
        return not self.violations and all(c.passed for c in self.checks)

    def render(self, max_violations: int = 20) -> str:
        lines = [f"chaos scenario: {self.scenario}", ""]
        rows = [*self.phases, *([self.overall] if self.overall else [])]
        if rows:
            lines += [table(SUMMARY_HEADERS, rows), ""]
        if self.order_statuses:
            statuses = ", ".join(f"{k} {n}" for k, n in sorted(self.order_statuses.items()))
            lines.append(f"orders: {statuses}")
        lines += [f"{name}: {value}" for name, value in self.figures.items()]
        lines.append("")
        for check in self.checks:
            mark = "PASS" if check.passed else "FAIL"
            lines.append(f"[{mark}] {check.name}" + (f" ({check.detail})" if check.detail else ""))
        mark = "PASS" if not self.violations else "FAIL"
        lines.append(f"[{mark}] invariants: {len(self.violations)} violations")
        lines += [f"    {v}" for v in self.violations[:max_violations]]
        if len(self.violations) > max_violations:
            lines.append(f"    ... and {len(self.violations) - max_violations} more")
        lines.append("")
        lines.append(f"result: {'PASSED' if self.passed else 'FAILED'}")
        return "\n".join(lines)
