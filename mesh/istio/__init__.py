"""Kubernetes + Istio manifests for istio/, rendered from proto/ and mesh/topology.yaml.

Everything in istio/base/ and the generated files of istio/overlays/canary/ come
from here, so the cluster runs the same call graph, timeouts and retry rules as
the contracts declare and the local mesh (envoy/, mesh/local/render) enforces.
`python -m mesh.istio write|check` writes them or fails on drift.
`kustomize.build` resolves a kustomization the way `kubectl apply -k` would for
the features istio/ uses, so tests validate exactly what gets applied.
"""
