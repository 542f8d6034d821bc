"""`shopmesh bench`: run every benchmark once and print one table, each figure beside its floor.

GetProduct direct, through two sidecars with mTLS and through two minimal Envoys
with the same mTLS (the sidecars' floor), also with one core kept busy (p99
ratios, each Envoy's CPU per 1000 req/s as a ratio to its floor's); ghz's
figures for the same calls; server CPU per call, full stack vs a trivial
grpc.aio server; the catalog with 1 vs 2 workers; the mesh client chain vs a bare
grpc.aio call; PlaceOrder throughput with 1 vs 2 order replicas, as they run
and each capped at 0.2 vCPU (a control group: needs root); checkout latency
through the edge at 10, 25 and 50/s against the checkout's floor (the same hops
and durable writes, trivial handlers) with CPU per checkout; the shop's
capacity within the SLO, the shopper mix at 1.5x and 2x of it (load shedding),
and the research paper's four load levels scaled to it. Loopback only; about
fourteen minutes (--quick: two).
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
    parser.add_argument(
        "--only",
        action="append",
        choices=suite.PARTS,
        metavar="PART",
        help=f"run only this part (repeatable): {', '.join(suite.PARTS)}; default: all",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    work_dir = args.work_dir or pathlib.Path(tempfile.mkdtemp(prefix="shopmesh-bench-"))
    plan = suite.QUICK if args.quick else suite.FULL
    print(suite.header(), flush=True)
    try:
        rows = suite.run(
            plan,
            work_dir,
            say=lambda m: print(f"... {m}", file=sys.stderr, flush=True),
            parts=args.only or suite.PARTS,
        )
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    print(render(rows))
    print(f"machine after the run: {suite.machine()}")
    return 0
