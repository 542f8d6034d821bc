"""Identities the local mesh issues: the mesh CA and its SPIFFE workload certificates."""
