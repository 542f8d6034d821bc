"""A rollout as people read it: the live line per sample, the final table, and its picture
(weight, error rate and p99 of the new version over time, with the policy's thresholds)."""

from __future__ import annotations

import pathlib

from shopmesh.delivery.controller import FAILED, Result, Sample
from shopmesh.load.stats import table
from shopmesh.local.proxy_stats import Figures

__all__ = ["render", "sample_line", "write_picture"]


def _p99(figures: Figures) -> str:
    return "-" if figures.p99_ms is None else f"{figures.p99_ms:.1f} ms"


def sample_line(sample: Sample, result: Result) -> str:
    """step, weights, the new version's calls, errors, p99 in this window, and the verdict."""
    steps = len(result.policy.steps_percent)
    new, old = sample.new, sample.old
    verdict = sample.verdict + (f" ({'; '.join(sample.reasons)})" if sample.reasons else "")
    return (
        f"t={sample.at:6.1f}s step {sample.step}/{steps} "
        f"weights old {100 - sample.percent:>3} % / {result.version} {sample.percent:>3} % "
        f"window {sample.window_at:4.1f}/{result.policy.window_seconds:g}s | "
        f"{result.version}: {new.requests} calls, {new.errors} errors ({new.error_rate:.2%}), "
        f"p99 {_p99(new)} | old: {old.requests} calls, p99 {_p99(old)} | {verdict}"
    )


def render(result: Result, picture: pathlib.Path | None = None) -> str:
    policy = result.policy
    rows = [
        [
            step.step,
            f"{step.percent} %",
            f"{step.ended - step.started:.1f}",
            step.new.requests,
            step.new.errors,
            f"{step.new.error_rate:.2%}",
            _p99(step.new),
            step.old.requests,
            _p99(step.old),
            step.verdict + (f": {'; '.join(step.reasons)}" if step.reasons else ""),
        ]
        for step in result.steps
    ]
    headers = ["step", "weight", "held s", "new calls", "errors", "error rate", "new p99",
               "old calls", "old p99", "verdict"]  # fmt: skip
    lines = [
        f"rollout of {result.service} {result.version}: {result.outcome.upper()}"
        + (f" ({result.reason})" if result.reason else ""),
        f"policy: steps {'/'.join(map(str, policy.steps_percent))} %, window "
        f"{policy.window_seconds:g} s, >= {policy.min_requests} calls, error rate < "
        f"{policy.max_error_rate:.2%}, p99 < {policy.max_p99_ms:g} ms",
    ]
    if result.command:
        lines.append(f"new version's command: {' '.join(result.command)}")
    if rows:
        lines += ["", table(headers, rows), ""]
    if result.breach_at is not None and result.first_traffic_at is not None:
        lines.append(
            f"breach seen {result.breach_at - result.first_traffic_at:.1f} s after the new "
            f"version's first calls; every caller at 0 % "
            f"{(result.zero_at or result.finished_at) - result.breach_at:.2f} s later"
        )
    lines.append(f"took {result.finished_at:.1f} s")
    if picture:
        lines.append(f"picture: {picture}")
    return "\n".join(lines)


def write_picture(result: Result, path: pathlib.Path) -> pathlib.Path:
    """Weight, error rate and p99 of the new version over time (each window so far, as it
    was judged), with the policy's thresholds and the step boundaries. PNG or SVG, by
    `path`'s suffix."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot

    policy = result.policy
    samples = result.samples
    at = [s.at for s in samples]
    figure, (weight, errors, latency) = pyplot.subplots(
        3, 1, sharex=True, figsize=(9, 6.5), constrained_layout=True
    )
    figure.suptitle(
        f"shopmesh rollout {result.service} {result.version}: {result.outcome}"
        + (f" ({result.reason})" if result.reason else "")[:90],
        fontsize=11,
    )
    # The weight in force: 0 until the first step, then each step's, then 0 again after a
    # rollback (or 100 % for good after a promotion).
    shifts = [(0.0, 0)] + [(step.started, step.percent) for step in result.steps]
    if result.zero_at is not None:
        shifts.append((result.zero_at, 0))
    shifts.append((result.finished_at, shifts[-1][1]))
    weight.step([t for t, _ in shifts], [w for _, w in shifts], where="post", color="tab:blue")
    weight.set_ylabel(f"{result.version} weight %")
    weight.set_ylim(-5, 105)
    errors.plot(at, [100 * s.new.error_rate for s in samples], marker=".", color="tab:red",
                label=result.version)  # fmt: skip
    errors.plot(at, [100 * s.old.error_rate for s in samples], color="tab:gray", alpha=0.6,
                label="old")  # fmt: skip
    errors.axhline(100 * policy.max_error_rate, color="black", linestyle="--", linewidth=0.8,
                   label=f"limit {policy.max_error_rate:.1%}")  # fmt: skip
    errors.set_ylabel("error rate %")
    errors.legend(loc="upper left", fontsize=8)
    latency.plot(at, [s.new.p99_ms for s in samples], marker=".", color="tab:purple",
                 label=result.version)  # fmt: skip
    latency.plot(at, [s.old.p99_ms for s in samples], color="tab:gray", alpha=0.6, label="old")
    latency.axhline(policy.max_p99_ms, color="black", linestyle="--", linewidth=0.8,
                    label=f"limit {policy.max_p99_ms:g} ms")  # fmt: skip
    latency.set_ylabel("p99 ms")
    latency.set_xlabel("seconds since the rollout began (each point: the step's window so far)")
    latency.legend(loc="upper left", fontsize=8)
    for axes in (weight, errors, latency):
        axes.grid(alpha=0.3)
        for step in result.steps:
            axes.axvline(step.started, color="tab:blue", alpha=0.25, linewidth=0.8)
        if result.breach_at is not None:
            axes.axvline(result.breach_at, color="tab:red", alpha=0.6, linewidth=1.2)
    failed = [s for s in samples if s.verdict == FAILED]
    if failed:
        weight.annotate("rolled back", (failed[0].at, failed[0].percent), fontsize=8,
                        color="tab:red", xytext=(5, 10), textcoords="offset points")  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    pyplot.close(figure)
    return path
