"""`shopmesh canary`: the traffic weights of one step of a canary release.

shopmesh canary --plan                  # the steps and their v1/v2 weights
shopmesh canary --step 2                # VirtualServices at 80/20, to stdout
shopmesh canary --step 2 | kubectl apply -f -
shopmesh canary --step 2 --write        # into istio/overlays/canary (GitOps)
"""

from __future__ import annotations

import argparse
import sys

from shopmesh.istio import canary, manifests

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    if args.plan:
        for step, (v1, v2) in enumerate(canary.PLAN):
            print(f"step {step}: v1 {v1}% / v2 {v2}%")
        return 0
    if args.step is None:
        print("shopmesh canary: give --step N (or --plan)", file=sys.stderr)
        return 2
    try:
        documents = canary.virtual_service_weights(args.step)
    except ValueError as error:
        print(f"shopmesh canary: {error}", file=sys.stderr)
        return 2
    if not args.write:
        sys.stdout.write(manifests.dump(documents))
        return 0
    istio_dir = manifests.ISTIO_DIR
    if not (istio_dir / "overlays" / "canary").is_dir():
        print(f"shopmesh canary: no istio/overlays/canary under {istio_dir}", file=sys.stderr)
        return 1
    manifests.write(istio_dir, canary_step=args.step)
    v1, v2 = canary.weights(args.step)
    print(f"istio/{manifests.CANARY_WEIGHTS}: step {args.step}, v1 {v1}% / v2 {v2}%")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "canary",
        help="render the traffic weights of a canary step",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--step",
        type=int,
        help=f"step 0..{len(canary.PLAN) - 1} of the plan "
        + " -> ".join(f"{v1}/{v2}" for v1, v2 in canary.PLAN),
    )
    parser.add_argument("--plan", action="store_true", help="print the plan and exit")
    parser.add_argument(
        "--write",
        action="store_true",
        help="write the weights into istio/overlays/canary instead of stdout",
    )
    parser.set_defaults(func=_run)
