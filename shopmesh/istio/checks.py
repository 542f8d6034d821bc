"""istio/ through the platform team's own tools: kustomize, kubeconform, istioctl.

    shopmesh validate     # every overlay through all three: what `make test` checks

- `kustomize build OVERLAY` renders a kustomization: exactly what
  `kubectl apply -k` applies (kubectl embeds kustomize).
- `kubeconform -strict` validates every rendered object against its JSON schema:
  built-in kinds against Kubernetes' own for KUBERNETES_VERSION (from the
  kubernetes-validate wheel, made readable offline by tools/kubernetes_schemas.py),
  custom resources against the CRD schemas of ../shared/schemas, one folder per
  family, chosen by API group (CRD_FAMILIES; Istio's groups are folders of istio/).
  Strict: an unknown field is an error. A kind without a schema is an error too,
  never skipped.
- `istioctl analyze --use-kube=false -A` analyses the rendered stream offline, as
  Istio's control plane would see it: hosts, subsets, gateways and selectors that
  lead nowhere, conflicting or unreachable rules. `-A`, because without it only
  namespace `default` is analysed. Every Warning or Error is a problem, except
  the ones SUPPRESSED lists with their reason.

The tools come from .tools/bin (`make tools`), at the versions the Makefile pins.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from shopmesh import gotools
from shopmesh.istio.manifests import ISTIO_DIR

__all__ = [
    "CRD_FAMILIES",
    "FAILING_LEVELS",
    "KUBERNETES_VERSION",
    "OVERLAYS",
    "SUPPRESSED",
    "Finding",
    "ToolFailed",
    "analyze",
    "analyze_command",
    "build",
    "kubeconform",
    "kubeconform_command",
    "overlays",
    "problems",
]

# Every kustomization a platform team may apply; each is checked whole.
OVERLAYS = ("base", "overlays/progressive-delivery")
# A release kubernetes-validate ships schemas for and that current Istio supports;
# it has the preStop `sleep` action the Deployments use (1.29+).
KUBERNETES_VERSION = "1.32"
# API group -> its folder in ../shared/schemas; any other group is Istio's, in istio/<group>.
CRD_FAMILIES = {
    "gateway.networking.k8s.io": "gateway-api",
    "postgresql.cnpg.io": "cnpg",
    "flagger.app": "flagger",
    "monitoring.coreos.com": "prometheus-operator",
    "argoproj.io": "argo-rollouts",
}
# istioctl analyze --suppress "CODE=Kind namespace/name" -> why it is accepted.
SUPPRESSED = {
    "IST0133=EnvoyFilter istio-system/grpc-json-transcoder": (
        "EnvoyFilter is Istio's only way to put Envoy's gRPC-JSON transcoder in the "
        "gateway; IST0133 warns that it patches Envoy's internals. The patch is checked "
        "against Envoy itself (envoy --mode validate, in make test), and after an Istio "
        "upgrade istio/README.md's Debugging steps show whether the gateway still has it."
    ),
}
# istioctl's message levels that fail the check (Info does not).
FAILING_LEVELS = ("Error", "Warning")
# What istioctl prints before the objects it could not parse (and then skipped).
UNPARSED = "Error(s) adding files"
TIMEOUT = 120


@dataclass(frozen=True)
class Finding:
    tool: str  # "kubeconform" or "istioctl"
    code: str  # istioctl's IST code, or kubeconform's status
    level: str  # "Error", "Warning" or "Info"
    resource: str  # "VirtualService shop/catalog"
    message: str

    def __str__(self) -> str:
        return f"{self.tool}: {self.level} [{self.code}] {self.resource}: {self.message}"


class ToolFailed(RuntimeError):
    """The tool itself failed (bad input, a missing file), not the manifests."""


def _run(command: list[str], *, accept: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    if done.returncode not in accept:
        raise ToolFailed(f"{' '.join(command[:2])} exited {done.returncode}:\n{done.stderr}")
    return done


def build(overlay: pathlib.Path) -> str:
    """`kustomize build overlay`: the YAML stream `kubectl apply -k overlay` applies."""
    return _run([gotools.find("kustomize"), "build", str(overlay)]).stdout


def _crd_schema_location(crd_schemas: pathlib.Path) -> str:
    families = "".join(
        f'{{{{ {"if" if i == 0 else "else if"} eq .Group "{group}" }}}}{folder}'
        for i, (group, folder) in enumerate(CRD_FAMILIES.items())
    )
    family = f"{families}{{{{ else }}}}istio/{{{{ .Group }}}}{{{{ end }}}}"
    return f"{crd_schemas}/{family}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json"


def _kubernetes_schema_location() -> str:
    version = "{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}"
    return (
        f"{gotools.KUBERNETES_SCHEMAS}/{version}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json"
    )


def kubeconform_command(crd_schemas: pathlib.Path) -> list[str]:
    """kubeconform, strict and offline, with every schema location; the files follow."""
    return [
        gotools.find("kubeconform"),
        "-strict",
        # One worker: with the default four, each compiles the same schemas (3x the time here).
        "-n",
        "1",
        "-kubernetes-version",
        f"{KUBERNETES_VERSION}.0",
        "-schema-location",
        _crd_schema_location(crd_schemas),
        "-schema-location",
        _kubernetes_schema_location(),
    ]


@contextlib.contextmanager
def _on_disk(stream: str) -> Iterator[str]:
    """The stream as a file: both tools name the file and line of what they report."""
    with tempfile.TemporaryDirectory(prefix="shopmesh-checks-") as folder:
        path = pathlib.Path(folder) / "rendered.yaml"
        path.write_text(stream)
        yield str(path)


def kubeconform(stream: str, crd_schemas: pathlib.Path) -> tuple[int, list[Finding]]:
    """(objects found valid, findings about the others) for a YAML stream."""
    if not gotools.KUBERNETES_SCHEMAS.is_dir():
        raise gotools.ToolMissing(f"{gotools.KUBERNETES_SCHEMAS} is missing: run `make tools`")
    with _on_disk(stream) as path:
        # Exit 1 means invalid objects, which the JSON report names.
        done = _run(
            [*kubeconform_command(crd_schemas), "-output", "json", "-verbose", path],
            accept=(0, 1),
        )
    valid, findings = 0, []
    for resource in json.loads(done.stdout)["resources"]:
        if resource["status"] == "statusValid":
            valid += 1
            continue
        # Built-in kinds' errors name only `/spec: validation failed` there; `msg` has the rest.
        errors = [
            f"{e['path']}: {e['msg']}"
            for e in resource.get("validationErrors") or []
            if e["msg"] != "validation failed"
        ]
        findings.append(
            Finding(
                tool="kubeconform",
                code=resource["status"],
                level="Error",
                resource=f"{resource['kind']} {resource['name']}",
                message="; ".join(errors) or resource["msg"],
            )
        )
    return valid, findings


def analyze_command(suppressed: Mapping[str, str] = SUPPRESSED) -> list[str]:
    """istioctl analyze, offline, every namespace, with the suppressions; the files follow."""
    suppressions = [arg for rule in suppressed for arg in ("--suppress", rule)]
    return [gotools.find("istioctl"), "analyze", "--use-kube=false", "-A", *suppressions]


def analyze(stream: str, suppressed: Mapping[str, str] = SUPPRESSED) -> list[Finding]:
    """Every message of istioctl analyze about a YAML stream, Info included.

    An object istioctl cannot parse (a wrong enum, a field of the wrong type) it
    skips with a log line, and analyses the rest: that is a finding too."""
    with _on_disk(stream) as path:
        # JSON on stdout, its log on stderr. With JSON output istioctl exits 0
        # whatever it found; the messages say it all.
        command = [*analyze_command(suppressed), "--output", "json", "--log_target", "stderr"]
        done = _run([*command, path])
    findings = [
        Finding("istioctl", m["code"], m["level"], m.get("origin", ""), m["message"])
        for m in json.loads(done.stdout or "[]")
    ]
    skipped = [
        line.strip(" \t*")
        for line in done.stderr.partition(UNPARSED)[2].splitlines()
        if "error processing" in line
    ]
    findings += [Finding("istioctl", "FileParseError", "Error", "", line) for line in skipped]
    return findings


def problems(stream: str, crd_schemas: pathlib.Path) -> list[Finding]:
    """What kubeconform and istioctl analyze object to in a YAML stream."""
    _, invalid = kubeconform(stream, crd_schemas)
    return invalid + [f for f in analyze(stream) if f.level in FAILING_LEVELS]


def overlays(istio_dir: pathlib.Path = ISTIO_DIR) -> dict[str, str]:
    """overlay -> its `kustomize build` output, for every overlay of istio/."""
    return {name: build(istio_dir / name) for name in OVERLAYS}
