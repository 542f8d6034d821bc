"""Envoy configs of the local mesh, rendered from shopmesh/topology.yaml and the contracts.

`edge.render()` gives the edge proxy's bootstrap, `sidecar.render()` a service
replica's; both are built from the fragments in envoy/ (see templates.py).
"""
