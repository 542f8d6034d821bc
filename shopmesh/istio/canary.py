"""Progressive delivery: v1 and v2 of every service side by side, traffic shifted in steps.

The canary overlay adds a `<service>-v2` Deployment per service (image
`shopmesh-canary`, which the overlay's kustomization maps to the release), the
subsets v1/v2 on each DestinationRule, and the VirtualServices of the mesh and
the gateway with the weights of one step of PLAN.
"""

from __future__ import annotations

from typing import Any

from shopmesh import topology
from shopmesh.istio import ingress, traffic, workloads
from shopmesh.istio.cluster import metadata

__all__ = [
    "CANARY_IMAGE",
    "PLAN",
    "STEP_ANNOTATION",
    "deployments_v2",
    "destination_rule_subsets",
    "step_of",
    "virtual_service_weights",
    "weights",
]

# (v1 %, v2 %) per step: a small slice first, then widen while v2 stays healthy.
PLAN: tuple[tuple[int, int], ...] = ((100, 0), (95, 5), (80, 20), (50, 50), (0, 100))
CANARY_IMAGE = "shopmesh-canary"
STEP_ANNOTATION = "shopmesh/canary-step"


def weights(step: int) -> tuple[int, int]:
    if not 0 <= step < len(PLAN):
        raise ValueError(f"canary step must be 0..{len(PLAN) - 1}, not {step}")
    return PLAN[step]


def deployments_v2() -> list[dict[str, Any]]:
    return [
        workloads.deployment(service, version="v2", image=CANARY_IMAGE, name=f"{service}-v2")
        for service in sorted(topology.load().services)
    ]


def destination_rule_subsets() -> list[dict[str, Any]]:
    """Patches adding the subsets v1/v2 (by the pods' `version` label)."""
    return [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": metadata(service),
            "spec": {
                "subsets": [
                    {"name": version, "labels": {"version": version}} for version in ("v1", "v2")
                ]
            },
        }
        for service in sorted(topology.load().services)
    ]


def virtual_service_weights(step: int) -> list[dict[str, Any]]:
    """The mesh's and the gateway's VirtualServices with the step's weights on every route."""
    split = weights(step)
    documents = [traffic.virtual_service(s, split) for s in sorted(topology.load().services)]
    documents.append(ingress.virtual_service(split))
    for document in documents:
        document["metadata"]["annotations"] = {STEP_ANNOTATION: str(step)}
    return documents


def step_of(documents: list[dict[str, Any]]) -> int:
    """The step rendered in virtual_service_weights() output, read back from it."""
    steps = {int(d["metadata"]["annotations"][STEP_ANNOTATION]) for d in documents}
    if len(steps) != 1:
        raise ValueError(f"canary weights disagree on the step: {sorted(steps)}")
    return steps.pop()
