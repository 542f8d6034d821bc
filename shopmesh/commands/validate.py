"""`shopmesh validate`: istio/ through kustomize, kubeconform and istioctl analyze.

shopmesh validate                          # every overlay; exit 1 naming each problem
shopmesh validate --crd-schemas DIR        # where the CRDs' JSON schemas are
shopmesh validate --envoy                  # envoy/examples/ instead, by `envoy --mode validate`

Each overlay of istio/ is rendered by `kustomize build`, then validated by
`kubeconform -strict` (built-in kinds against Kubernetes' schemas, custom
resources against DIR) and analysed by `istioctl analyze --use-kube=false -A`,
the commands it prints. The tools are .tools/bin's (`make tools`). Run from the
checkout's root.
"""

from __future__ import annotations

import argparse
import pathlib
import shlex
import sys
import tempfile

from shopmesh.envoy import examples
from shopmesh.istio import checks
from shopmesh.local.mesh import envoy_binary

__all__ = ["register"]


def _envoy_examples() -> int:
    """Each example names files a deployment mounts (certificates, discovery, the
    transcoder's descriptor): they are made up in a scratch directory first."""
    with tempfile.TemporaryDirectory(prefix="shopmesh-validate-") as scratch:
        runs = examples.validate(envoy_binary(), pathlib.Path(scratch))
    for name, run in runs.items():
        verdict = "valid" if run.returncode == 0 else "INVALID"
        print(f"envoy/examples/{name}: {verdict} (envoy --mode validate)")
        if run.returncode:
            print((run.stdout + run.stderr).strip())
    return 1 if any(run.returncode for run in runs.values()) else 0


def _run(args: argparse.Namespace) -> int:
    if args.envoy:
        return _envoy_examples()
    crd_schemas = args.crd_schemas.resolve()
    if not crd_schemas.is_dir():
        print(f"no CRD schemas at {crd_schemas}: pass --crd-schemas", file=sys.stderr)
        return 2
    print(f"kubeconform: {shlex.join(checks.kubeconform_command(crd_schemas))} FILE")
    print(f"istioctl:    {shlex.join(checks.analyze_command())} FILE")
    for rule, reason in checks.SUPPRESSED.items():
        print(f"  suppressed {rule}: {reason}")
    failed = False
    for overlay, stream in checks.overlays().items():
        valid, invalid = checks.kubeconform(stream, crd_schemas)
        analysed = [f for f in checks.analyze(stream) if f.level in checks.FAILING_LEVELS]
        print(f"istio/{overlay}: {valid} objects valid, {len(invalid)} invalid; "
              f"istioctl analyze: {len(analysed)} errors or warnings")  # fmt: skip
        for finding in invalid + analysed:
            print(f"  {finding}")
        failed = failed or bool(invalid or analysed)
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check istio/ with kustomize, kubeconform and istioctl analyze",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--crd-schemas",
        type=pathlib.Path,
        default=pathlib.Path("../shared/schemas"),
        help="JSON schemas of the CRDs, one folder per family (default: ../shared/schemas)",
    )
    parser.add_argument(
        "--envoy",
        action="store_true",
        help="validate envoy/examples/ with Envoy (throwaway certificates and files) instead",
    )
    parser.set_defaults(func=_run)
