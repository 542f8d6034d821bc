"""One row of `shopmesh bench`'s table, whatever the benchmark: the same columns for all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from shopmesh.load.stats import percentile, table

__all__ = ["HEADERS", "Row", "errors_text", "render"]

HEADERS = ["benchmark", "variant", "load", "p50 ms", "p90 ms", "p99 ms", "errors", "figure",
           "goal", "met"]  # fmt: skip


@dataclass(frozen=True)
class Row:
    benchmark: str
    variant: str
    load: str = ""
    latencies: Sequence[float] = ()  # seconds; empty when the row is not about latency
    errors: str = ""
    figure: str = ""
    goal: str = ""
    met: bool | None = None  # None: no goal, or not measurable here

    def cells(self) -> list[object]:
        if self.latencies:
            ms = [s * 1000 for s in self.latencies]
            spread = [f"{percentile(ms, q):.2f}" for q in (50, 90, 99)]
        else:
            spread = ["", "", ""]
        met = "" if self.met is None else ("yes" if self.met else "NO")
        return [self.benchmark, self.variant, self.load, *spread, self.errors, self.figure,
                self.goal, met]  # fmt: skip


def errors_text(outcomes: Counter, ok: str = "OK") -> str:
    """ "0", or the failed outcomes with counts and the share of all calls."""
    total = sum(outcomes.values())
    failed = {k: n for k, n in outcomes.items() if k != ok}
    if not failed:
        return "0"
    share = 100 * sum(failed.values()) / max(total, 1)
    return f"{share:.2f} % (" + ", ".join(f"{k}:{n}" for k, n in sorted(failed.items())) + ")"


def render(rows: Sequence[Row]) -> str:
    return table(HEADERS, [row.cells() for row in rows])
