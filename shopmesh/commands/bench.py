"""`shopmesh bench`: run every benchmark once and print one table.

GetProduct direct vs through two sidecars with mTLS at a fixed rate (p50/p90/p99,
p99 ratio, each Envoy's CPU per 1000 req/s from /proc); server CPU per call,
full stack vs a trivial grpc.aio server; the catalog with 1 vs 2 workers; the
mesh client chain vs bare grpc.aio; checkout latency through the edge at 10,
25 and 50/s; the capacity of the shop within the SLO and the research paper's
four load levels scaled to it. Loopback only; about five minutes (--quick: one).
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import tempfile

from shopmesh.bench import suite
from shopmesh.bench.row import render


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run every benchmark and print one table",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short smoke run (figures mean little)"
    )
    parser.add_argument(
        "--work-dir",
        type=pathlib.Path,
        help="where the meshes and services keep their files (kept); default: a temporary dir",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    work_dir = args.work_dir or pathlib.Path(tempfile.mkdtemp(prefix="shopmesh-bench-"))
    plan = suite.QUICK if args.quick else suite.FULL
    print(suite.header(), flush=True)
    try:
        rows = suite.run(
            plan, work_dir, say=lambda m: print(f"... {m}", file=sys.stderr, flush=True)
        )
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    print(render(rows))
    print(f"machine after the run: {suite.machine()}")
    return 0
