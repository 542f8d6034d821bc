"""`shopmesh generate`: the files of the checkout rendered from proto/ and the topology.

shopmesh generate           # rewrite istio/ and envoy/examples/   (make gen)
shopmesh generate --check   # exit 1 naming what is stale           (make check-gen)

Run from the checkout's root.
"""

from __future__ import annotations

import argparse
import sys

from shopmesh.envoy import examples
from shopmesh.istio import manifests

__all__ = ["register"]

# (folder, writer, checker): each writer returns the names it wrote, each
# checker the names whose committed copy differs from a fresh render.
_TARGETS = (
    ("istio", manifests.write, manifests.check),
    ("envoy/examples", examples.write, examples.check),
)


def _run(args: argparse.Namespace) -> int:
    if not args.check:
        for folder, write, _check in _TARGETS:
            for name in write():
                print(f"wrote {folder}/{name}")
        return 0
    stale = [f"{folder}/{name}" for folder, _write, check in _TARGETS for name in check()]
    if stale:
        print("stale generated files; run `make gen` and commit:", file=sys.stderr)
        for path in stale:
            print(f"  differs: {path}", file=sys.stderr)
        return 1
    print("istio/ and envoy/examples/ match proto/, the topology and the Envoy fragments")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="rewrite istio/ and envoy/examples/ (or --check them)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--check", action="store_true", help="fail if a committed file is stale")
    parser.set_defaults(func=_run)
