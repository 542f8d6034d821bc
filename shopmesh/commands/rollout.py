"""`shopmesh rollout <service> --to <version or command>`: a new version of one service on the
running local mesh (`make up`), moved 5 -> 20 -> 50 -> 100 % of its calls only while its
own error rate and p99 stay within the SLO, and rolled back at once otherwise.

The steps, the analysis window and the thresholds are shopmesh/rollout.yaml's (the
same policy istio/'s Flagger Canary resources are generated from); --window and
--min-requests shorten the window for a demo. --to names the new version (`v2`: the
service's code as it is in this checkout now, `python -m services <service>`) or
gives the command its replicas run instead (more than one word, e.g. a rehearsal of a
bad release: "python tests/shopmesh/delivery/faulty_service.py catalog --fail 0.3";
`python` there is the mesh's own interpreter, relative paths are from here).

The runner (`shopmesh up`) starts the new replicas with their own sidecars and moves
the weights at every caller's proxy without restarting any; this command shows each
sample as it comes (step, weights, the new version's calls, errors and p99 in the
window so far, verdict), then the report, and writes its picture (weight, error rate
and p99 over time) to --picture. Exit status 0 when the new version was promoted, 1
when it was rolled back or did not start. Ctrl-C rolls back.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shlex
import sys
import time

from shopmesh.delivery import report
from shopmesh.delivery.control import ControlError, request
from shopmesh.delivery.controller import HOLDING, PROMOTED, Result, Sample
from shopmesh.local.layout import DEFAULT_RUN_DIR, RunDir

__all__ = ["register"]

VERSION_LABEL = re.compile(r"^[a-z0-9][a-z0-9.-]{0,30}$")
# Without a terminal to redraw a line on, a sample is printed this often (and each verdict).
QUIET_SECONDS = 10.0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "rollout",
        help="roll out a new version of a service on the local mesh, gated by the SLO",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("service", help="catalog, inventory, payment or order")
    parser.add_argument(
        "--to",
        required=True,
        metavar="VERSION_OR_COMMAND",
        help="the new version's name (e.g. v2), or the command its replicas run",
    )
    parser.add_argument(
        "--window", type=float, metavar="SECONDS", help="analysis window (default: the policy's)"
    )
    parser.add_argument(
        "--min-requests", type=int, metavar="N", help="calls a window needs (with --window)"
    )
    parser.add_argument("--run-dir", type=pathlib.Path, default=DEFAULT_RUN_DIR)
    parser.add_argument(
        "--picture",
        type=pathlib.Path,
        help="where to write the picture, .png or .svg "
        "(default: <run-dir>/rollouts/<service>-<version>-<time>.png)",
    )
    parser.set_defaults(func=_rollout)


def target(text: str) -> tuple[str | None, list[str] | None]:
    """--to as (version, command): a version name, or a command (with a name chosen later)."""
    words = shlex.split(text)
    if len(words) == 1 and VERSION_LABEL.match(words[0]):
        return words[0], None
    if not words:
        raise ValueError("--to needs a version name or a command")
    return None, words


class Display:
    """The live progress: one line redrawn per sample on a terminal, else a line now and then."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout
        self.redraw = self.stream.isatty()
        self._last_printed = -QUIET_SECONDS
        self._open_line = False

    def note(self, at: float, text: str) -> None:
        self._end_line()
        print(f"t={at:6.1f}s {text}", file=self.stream, flush=True)

    def sample(self, sample: Sample, result: Result) -> None:
        line = report.sample_line(sample, result)
        if self.redraw:
            print("\r\033[K" + line, end="", file=self.stream, flush=True)
            self._open_line = True
            if sample.verdict != HOLDING:
                self._end_line()
        elif sample.verdict != HOLDING or sample.at - self._last_printed >= QUIET_SECONDS:
            print(line, file=self.stream, flush=True)
            self._last_printed = sample.at

    def _end_line(self) -> None:
        if self._open_line:
            print(file=self.stream, flush=True)
            self._open_line = False


def _rollout(args: argparse.Namespace) -> int:
    try:
        version, command = target(args.to)
    except ValueError as error:
        print(f"shopmesh rollout: {error}", file=sys.stderr)
        return 2
    if args.min_requests is not None and args.window is None:
        print("shopmesh rollout: --min-requests goes with --window", file=sys.stderr)
        return 2
    # A window that needs no call would pass every step: a version nobody called, promoted.
    if args.window is not None and args.window <= 0:
        print("shopmesh rollout: --window must be positive", file=sys.stderr)
        return 2
    if args.min_requests is not None and args.min_requests < 1:
        print("shopmesh rollout: --min-requests must be at least 1", file=sys.stderr)
        return 2
    message = {
        "op": "rollout",
        "service": args.service,
        "version": version,
        "command": command,
        "cwd": os.getcwd(),
        "window_seconds": args.window,
        "min_requests": args.min_requests,
    }
    display = Display()
    begun: Result | None = None  # what the runner is rolling out (version, policy)
    result: Result | None = None
    try:
        for event in request(RunDir(args.run_dir).control, message):
            kind = event["kind"]
            if kind == "begin":
                begun = Result.from_json(event["result"])
            elif kind == "note":
                display.note(event["at"], event["text"])
            elif kind == "sample" and begun:
                display.sample(Sample.from_json(event["sample"]), begun)
            elif kind == "result":
                result = Result.from_json(event["result"])
    except ControlError as error:
        print(f"shopmesh rollout: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nshopmesh rollout: interrupted: the runner rolls back", file=sys.stderr)
        return 130
    if result is None:
        print("shopmesh rollout: the runner ended without a result", file=sys.stderr)
        return 1
    picture = args.picture or RunDir(args.run_dir).root / "rollouts" / (
        f"{result.service}-{result.version}-{time.strftime('%Y%m%d-%H%M%S')}.png"
    )
    if result.samples:
        report.write_picture(result, picture)
    print()
    print(report.render(result, picture if result.samples else None))
    return 0 if result.outcome == PROMOTED else 1
