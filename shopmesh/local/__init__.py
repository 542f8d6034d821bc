"""The local mesh: real Envoy sidecars and edge around the four services on one machine.

`shopmesh.local.mesh.LocalMesh` runs it (and `shopmesh up` / `shopmesh status`
use it); `render/` turns shopmesh/topology.yaml and the contracts into Envoy
configs from the fragments in envoy/; the other modules are its parts:
certificates, discovery files, ports, processes, Envoy's admin API.
"""
