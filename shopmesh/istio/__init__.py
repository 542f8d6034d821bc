"""Kubernetes + Istio manifests for istio/, rendered from proto/ and shopmesh/topology.yaml.

Everything in istio/base/ and the generated files of istio/overlays/canary/ come
from here, so the cluster runs the same call graph, timeouts and retry rules as
the contracts declare and the local mesh (envoy/, shopmesh/envoy/) enforces.
The services' state is PostgreSQL under CloudNativePG (postgres.py): one
Cluster, a Database and role per database of the topology, and the settings
each pod connects with.
`shopmesh generate [--check]` writes them or fails on drift.
`kustomize.build` resolves a kustomization the way `kubectl apply -k` would for
the features istio/ uses, so tests validate exactly what gets applied.
"""
