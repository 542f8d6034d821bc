"""`shopmesh chaos <name>`: run a chaos scenario on a fresh local mesh and check the invariants.

Each run starts its own mesh (sidecars, apps, edge on free loopback ports) in
--run-dir, injects its faults under load, waits for every order to be final,
checks the invariants and prints a report. Exit status 0 when every check
passed, 1 otherwise. Logs of every process stay in <run-dir>/logs.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import pathlib
import sys

from shopmesh.chaos import harness
from shopmesh.chaos.scenarios import SCENARIOS


def register(subparsers) -> None:
    lines = "\n".join(f"  {name:16} {entry.summary}" for name, entry in SCENARIOS.items())
    parser = subparsers.add_parser(
        "chaos",
        help="run a chaos scenario under load and check the invariants",
        description=f"{__doc__}\nscenarios:\n{lines}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", choices=[*SCENARIOS, "all"], help="the scenario (or all)")
    parser.add_argument("--short", action="store_true", help="the short form the test suite runs")
    parser.add_argument(
        "--run-dir",
        type=pathlib.Path,
        default=pathlib.Path("var/chaos"),
        help="each run's mesh keeps its files in RUN_DIR/<name>-<time> (default: var/chaos)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    names = list(SCENARIOS) if args.name == "all" else [args.name]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    failed = []
    for name in names:
        module = SCENARIOS[name].module
        run_dir = args.run_dir / f"{name}-{stamp}"
        report = harness.run(
            name,
            module.scenario,
            module.SHORT if args.short else module.FULL,
            run_dir,
            progress=lambda message: print(message, file=sys.stderr, flush=True),
        )
        print(report.render(), flush=True)
        print(f"(logs: {run_dir / 'logs'})\n", flush=True)
        if not report.passed:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
