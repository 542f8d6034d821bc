"""Latency and outcome bookkeeping for a load run, and its final table."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from shopmesh.load.stats import percentile, table

OK = "OK"


@dataclass
class Recorder:
    started: float = field(default_factory=time.monotonic)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outcomes: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    # Business results that are not errors, e.g. checkouts that ended FAILED (out of stock).
    notes: Counter = field(default_factory=Counter)
    dropped: int = 0
    # outcome -> latencies of the calls that had it, all operations together
    by_outcome: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def record(self, operation: str, latency: float, outcome: str) -> None:
        self.latencies[operation].append(latency)
        self.outcomes[operation][outcome] += 1
        self.by_outcome[outcome].append(latency)

    @property
    def completed(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def errors(self) -> int:
        return sum(n for c in self.outcomes.values() for code, n in c.items() if code != OK)

    def all_latencies(self) -> list[float]:
        return [x for v in self.latencies.values() for x in v]

    def progress_line(self, in_flight: int) -> str:
        elapsed = time.monotonic() - self.started
        recent = self.all_latencies()[-500:]
        p99 = percentile(recent, 99) * 1000 if recent else 0.0
        return (
            f"t={elapsed:5.1f}s done={self.completed} in-flight={in_flight} "
            f"rate={self.completed / max(elapsed, 1e-9):.0f}/s p99(recent)={p99:.1f}ms "
            f"errors={self.errors} dropped={self.dropped}"
        )

    def report(self, duration: float) -> str:
        rows = []
        for operation in sorted(self.latencies, key=lambda o: -len(self.latencies[o])):
            rows.append(self._row(operation, self.latencies[operation], self.outcomes[operation]))
        everything = Counter()
        for counter in self.outcomes.values():
            everything.update(counter)
        rows.append(self._row("all", self.all_latencies(), everything, duration))
        lines = [
            table(
                ["operation", "count", "rate/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"],
                rows,
            )
        ]
        if self.dropped:
            lines.append(f"dropped (client in-flight cap reached): {self.dropped}")
        if self.notes:
            lines.append("results: " + ", ".join(f"{k}={v}" for k, v in sorted(self.notes.items())))
        return "\n".join(lines)

    def _row(self, name: str, samples: list[float], outcomes: Counter, duration: float = 0):
        ms = [s * 1000 for s in samples]
        errors = {code: n for code, n in outcomes.items() if code != OK}
        error_text = ", ".join(f"{c}:{n}" for c, n in sorted(errors.items())) or "0"
        rate = len(ms) / duration if duration else len(ms) / max(self._span(), 1e-9)
        return [
            name,
            len(ms),
            rate,
            percentile(ms, 50),
            percentile(ms, 90),
            percentile(ms, 99),
            max(ms, default=float("nan")),
            error_text,
        ]

    def _span(self) -> float:
        return time.monotonic() - self.started
