"""Where the platform's Go tools are: the checkout's .tools/ (`make tools`), else PATH.

kustomize, kubeconform, istioctl, grpcurl, grpc-health-probe and ghz are pinned
by the Makefile and built from source into .tools/bin of the checkout; shopmesh
runs them from there, or from PATH when it runs outside a checkout.
"""

from __future__ import annotations

import os
import pathlib
import shutil

__all__ = ["KUBERNETES_SCHEMAS", "TOOLS_BIN", "ToolMissing", "find"]

TOOLS = pathlib.Path(__file__).resolve().parent.parent / ".tools"
TOOLS_BIN = TOOLS / "bin"
# Kubernetes' JSON schemas as kubeconform reads them offline (tools/kubernetes_schemas.py).
KUBERNETES_SCHEMAS = TOOLS / "kubernetes-schemas"


class ToolMissing(RuntimeError):
    """A Go tool is neither in .tools/bin nor on PATH."""


def find(name: str) -> str:
    """The command to run the tool `name` (e.g. "kustomize", "grpc-health-probe")."""
    local = TOOLS_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    raise ToolMissing(f"{name} is not in .tools/bin nor on PATH: `make tools` installs it")
