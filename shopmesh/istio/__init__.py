"""Kubernetes + Istio manifests for istio/, rendered from proto/ and shopmesh/topology.yaml.

Everything in istio/base/ and istio/overlays/progressive-delivery/ comes from
here, so the cluster runs the same call graph, timeouts and retry rules as
the contracts declare and the local mesh (envoy/, shopmesh/envoy/) enforces.
The services' state is PostgreSQL under CloudNativePG (postgres.py): one
Cluster, a Database and role per database of the topology, and the settings
each pod connects with.
`shopmesh generate [--check]` writes them or fails on drift.
`checks` runs what the platform team runs on them: `kustomize build` (what
`kubectl apply -k` applies), `kubeconform -strict` and `istioctl analyze`
(`shopmesh validate`; the tests use the same functions).
"""
